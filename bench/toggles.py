"""Toggles for bench/ab.py: ``toggle(app, on)`` switches one change on or off in process.

.venv/bin/python bench/ab.py toggles:device_cache --get /
"""

from __future__ import annotations

from kiosk.devices import access

_read_lookup = access._lookup


def _uncached_lookup(secret: str | None) -> access.EnrolledDevice | None:
    """Before issue 9 part 3: one ORM query (and read transaction) per kiosk request."""
    from kiosk.devices.services import device_for_secret
    from kiosk.extensions import db

    device = device_for_secret(db.session, secret)
    return None if device is None else access.EnrolledDevice(device.id, device.name)


def device_cache(_app, on: bool) -> None:
    """The device read on a reader of its own (on) or the ORM query of issue 9 (off)."""
    access._lookup = _read_lookup if on else _uncached_lookup


_kept_by_generation: dict = {}


def _generation_lookup(secret: str | None) -> access.EnrolledDevice | None:
    """Issue 9 part 3 to issue 11 part 4: the device kept under kiosk.cache's commit generation
    (a ``PRAGMA data_version`` check on a pool checkout each request) and read again on a second
    checkout after any commit, i.e. after every booking."""
    from kiosk.cache import commit_generation
    from kiosk.devices.services import MAX_SECRET_LENGTH, hash_secret
    from kiosk.extensions import db

    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    session = db.session()
    generation = commit_generation.check(session)
    secret_hash = hash_secret(secret)
    key = (str(session.get_bind().url), secret_hash)
    kept = _kept_by_generation.get(key)
    if generation is not None and kept is not None and kept[0] == generation:
        return kept[1]
    engine = session.get_bind()
    pooled = engine.raw_connection()
    try:
        row = pooled.driver_connection.execute(access._ENROLLED_SQL, (secret_hash,)).fetchone()
    finally:
        pooled.close()
    if row is None:
        return None
    found = access.EnrolledDevice(row[0], row[1])
    if generation is not None and generation == commit_generation.value:
        _kept_by_generation[key] = (generation, found)
    return found


def device_read(_app, on: bool) -> None:
    """The device read every request on a reader of its own (on, issue 11 part 5) or kept under
    the commit generation as before (off)."""
    access._lookup = _read_lookup if on else _generation_lookup


def _phone_checkin_view(app, on: bool, flask_limiter: bool):
    from kiosk.checkin import views
    from kiosk.extensions import limiter

    endpoint = "phone.phone_checkin"
    original = app.extensions.setdefault("bench_phone_checkin", app.view_functions[endpoint])
    if on:
        app.view_functions[endpoint] = original
    elif flask_limiter:
        # Before issue 9 part 5: the same view under Flask-Limiter's two route limits.
        bare = original.__wrapped__
        view = app.extensions.get("bench_flask_limited")
        if view is None:
            view = limiter.limit(views._phone_limit)(
                limiter.limit(views._pass_limit, key_func=views.pass_key, deduct_when=lambda response: response.status_code == 200)(bare)
            )
            app.extensions["bench_flask_limited"] = view
        app.view_functions[endpoint] = view


def phone_limiter(app, on: bool) -> None:
    """kiosk.limits' fixed window (on) or Flask-Limiter (off) on POST /c/checkin."""
    _phone_checkin_view(app, on, flask_limiter=True)


def _rendered(page: str, _variant: tuple, context: dict, values: dict):
    from kiosk.web import render

    balance = None if context["balance"] is None else int(values[1])
    return render(page, **(context | {"message": values[0], "balance": balance}))


def prebuilt_done(_app, on: bool) -> None:
    """The check-in confirmation prebuilt (on) or rendered in full per check-in (off)."""
    from kiosk.checkin import views
    from kiosk.web import prebuilt

    views.prebuilt = prebuilt if on else _rendered  # type: ignore[assignment]


def prebuilt_statements(_app, on: bool) -> None:
    """The check-in's statements as kiosk.db.Prebuilt on the DBAPI connection (on) or through
    Connection.execute, as Core statements (off; issue 9 parts 2-4 ran every statement so, part 4
    all but two reads)."""
    from kiosk.db import Prebuilt

    Prebuilt.enabled = on


_csrf_token = None


def csrf_token(_app, on: bool) -> None:
    """Pages' CSRF token from kiosk.web.csrf_token (on) or Flask-WTF's generate_csrf (off: a
    new serializer and a zlib attempt per token)."""
    global _csrf_token
    from flask_wtf.csrf import generate_csrf

    from kiosk import web
    from kiosk.home import views

    _csrf_token = _csrf_token or web.csrf_token
    web.csrf_token = views.csrf_token = _csrf_token if on else generate_csrf  # type: ignore[assignment]


def keypad_limiter(app, on: bool) -> None:
    """kiosk.limits' fixed windows (on) or Flask-Limiter (off) on the kiosk's keypad check-in."""
    from kiosk.checkin import views
    from kiosk.devices.access import device_key, phone_key
    from kiosk.extensions import limiter

    endpoint = "checkin.kiosk_phone"
    original = app.extensions.setdefault("bench_kiosk_phone", app.view_functions[endpoint])
    if on:
        app.view_functions[endpoint] = original
        return
    view = app.extensions.get("bench_kiosk_phone_flask_limited")
    if view is None:
        view = limiter.limit(views._device_limit, key_func=device_key)(limiter.limit(views._number_limit, key_func=phone_key)(original.__wrapped__))
        app.extensions["bench_kiosk_phone_flask_limited"] = view
    app.view_functions[endpoint] = view


# ---- booking (issue 11, part 4): .venv/bin/python bench/ab.py toggles:NAME --booking ----

_booking_saved: dict[str, object] = {}


def _booking_swap(name: str, on: bool, off_value: object) -> None:
    from kiosk.booking import services

    original = _booking_saved.setdefault(name, getattr(services, name))
    setattr(services, name, original if on else off_value)


def booking_person_index(_app, on: bool) -> None:
    """The booking's reads find the person's open bookings of the service through person_key
    (on), or as before: SQLite took the (service_id, day, ticket_seq) index and read the
    service's bookings from today on (off). A keypad booking reads them in its one plan read
    (_PLAN_READ_SQL's _MINE_WHERE, by phone or by card); the staff desk and a booking that
    shows waiting-list news first read them again under the lock (_LOCKED_READ_SQL). Each has a
    variant for a ticket of another day, without the people-ahead count (booking13): all six are
    switched."""
    from kiosk.booking import services

    for name in (
        "_PLAN_READ_BY_PHONE_SQL",
        "_PLAN_READ_BY_MEMBER_SQL",
        "_LOCKED_READ_SQL",
        "_PLAN_READ_BY_PHONE_OTHER_DAY_SQL",
        "_PLAN_READ_BY_MEMBER_OTHER_DAY_SQL",
        "_LOCKED_READ_OTHER_DAY_SQL",
    ):
        statement = _booking_saved.get(name, getattr(services, name))
        assert isinstance(statement, str) and "+b.service_id" in statement and "+b.day" in statement, name
        _booking_swap(name, on, statement.replace("+b.service_id", "b.service_id").replace("+b.day", "b.day"))


def _slot_among_day(service, schedule, day, zone, at):
    from kiosk.booking import services

    return next((slot for slot in services._day_slots(service, schedule, day, zone) if slot.starts_at == at), None)


def booking_slot_at(_app, on: bool) -> None:
    """find_slot computes the one slot asked for (on) or builds the day's slots and picks it (off)."""
    _booking_swap("_slot_at", on, _slot_among_day)


# booking_day_schedule (the day's schedule in one statement or three; docs/benchmarks.md part 4) is
# gone: since issue 11 part 8 the schedule is part of the booking's one plan read (_PLAN_READ_SQL).


_devices_forever: dict = {}


def _device_kept_forever(secret):
    found = _devices_forever.get(secret)
    if found is None:
        found = _devices_forever[secret] = _read_lookup(secret)
    return found


def device_reread(_app, on: bool) -> None:
    """The kiosk-device check as it is (on: one read per request) or the device kept forever
    with no check at all (off: unsafe, revocations unseen; measures what the check costs)."""
    access._lookup = _read_lookup if on else _device_kept_forever


# ---- booking (issue 11, part 5) ----

_views_saved: dict[str, object] = {}


def _ticket_url_signed_each_time(ticket):
    """Before part 5: a new signer, a new HMAC and url_for per booking."""
    from flask import current_app, url_for

    from kiosk.booking import services

    config = current_app.config
    return url_for("booking.ticket", token=services.ticket_token(ticket.booking_id, services.ticket_signer(config), config["CENTRE_CODE"]))


def booking_ticket_url(_app, on: bool) -> None:
    """The answer's HX-Location from a prefix built once and the tail signed per booking (on) or
    signed and built by url_for per booking (off)."""
    from kiosk.booking import views

    original = _views_saved.setdefault("_ticket_url", views._ticket_url)
    views._ticket_url = original if on else _ticket_url_signed_each_time  # type: ignore[assignment]


def booking_part5(app, on: bool) -> None:
    """Both of part 5's changes to a booking request at once: device_read and booking_ticket_url."""
    device_read(app, on)
    booking_ticket_url(app, on)
