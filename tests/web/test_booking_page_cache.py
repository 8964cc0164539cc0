"""The availability page kept whole between requests (kiosk.booking.views.service_page; issue 11,
part 8b) and the signing it relies on made once (kiosk.web: the session's serializer, the CSRF
token). What is kept must still follow the clock, the session and the keys."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from flask import g, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import validate_csrf
from itsdangerous import BadSignature
from wtforms.validators import ValidationError

import kiosk.booking.views as views
from kiosk.booking import services
from kiosk.booking.cache import AvailabilityCache, availability_cache
from kiosk.cache import commit_generation
from kiosk.web import KioskSessionInterface, csrf_token
from tests.helpers import TEST_SECRET

ZONE = ZoneInfo("Asia/Shanghai")


def clock_of(html: str) -> str:
    return html.split("data-clock>", 1)[1].split("<", 1)[0]


def test_the_kept_page_shows_each_requests_own_time(client, haircut, monkeypatch):
    """The page is rendered once and kept past the minute; the top bar's clock is filled in per
    request. Shown to fail with the clock rendered into the kept page (it stays at 09:41)."""
    renders = []
    real_render = views.render_template
    monkeypatch.setattr(views, "render_template", lambda *a, **k: renders.append(a[0]) or real_render(*a, **k))
    page = f"/booking/{haircut.id}"
    monkeypatch.setattr(views, "local_now", lambda: datetime(2026, 11, 30, 9, 41, 59, tzinfo=ZONE))
    assert clock_of(client.get(page).get_data(as_text=True)) == "09:41"
    monkeypatch.setattr(views, "local_now", lambda: datetime(2026, 11, 30, 9, 42, 0, tzinfo=ZONE))
    assert clock_of(client.get(page).get_data(as_text=True)) == "09:42"
    assert renders.count("booking/service.html") == 1  # the second answer was the kept page


def test_the_kept_strip_and_page_turn_over_at_midnight_with_no_slot_left_today(client, haircut, monkeypatch):
    """At 23:59 no slot is left today: the next cut-off by lead time is tomorrow morning, yet the
    strip's 今天 / 明天 change at midnight, so what is kept must be dropped then. Shown to fail
    without views._day_view's own midnight (the page and the day tap stay a day behind until
    tomorrow's first slot closes)."""
    today = datetime.now(ZONE).date()
    tomorrow = today + timedelta(days=1)
    before = datetime.combine(today, clock(23, 59), ZONE).astimezone(UTC)
    monkeypatch.setattr(views, "_now", lambda: before)
    page, tap = f"/booking/{haircut.id}", {"HX-Request": "true", "HX-Target": "booking-day"}
    for headers in ({}, tap):
        assert f"今天 {today.month}月{today.day}日" in client.get(page, headers=headers).get_data(as_text=True)
    monkeypatch.setattr(views, "_now", lambda: before + timedelta(minutes=2))
    for headers in ({}, tap):
        html = client.get(page, headers=headers).get_data(as_text=True)
        assert f"今天 {tomorrow.month}月{tomorrow.day}日" in html and f"今天 {today.month}月{today.day}日" not in html


def test_the_kept_session_serializer_reads_and_writes_flasks_cookies_and_follows_the_keys(app):
    """KioskSessionInterface keeps one serializer per key set (Flask makes one per request) and
    a derived key per secret. Its cookies are Flask's both ways; after a key change it signs
    and checks with the new key only (the old one while it is a fallback). Shown to fail with
    the serializer kept regardless of the key, and with the derived key kept regardless of the
    secret (the old key's cookie still reads once its fallback is gone)."""
    assert isinstance(app.session_interface, KioskSessionInterface)
    data = {"elder": True, "csrf_token": "ab" * 20}
    flask_serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    ours = app.session_interface.get_signing_serializer(app)
    assert ours is app.session_interface.get_signing_serializer(app)  # kept
    assert ours.loads(flask_serializer.dumps(data)) == data and flask_serializer.loads(ours.dumps(data)) == data
    old_cookie = ours.dumps(data)
    app.secret_key = "a-new-secret-key-for-this-test"
    app.config["SECRET_KEY_FALLBACKS"] = [TEST_SECRET]
    rotated = app.session_interface.get_signing_serializer(app)
    assert rotated.loads(old_cookie) == data
    assert SecureCookieSessionInterface().get_signing_serializer(app).loads(rotated.dumps(data)) == data
    app.config["SECRET_KEY_FALLBACKS"] = []
    with pytest.raises(BadSignature):
        app.session_interface.get_signing_serializer(app).loads(old_cookie)


def test_a_sessions_csrf_token_is_signed_once_and_stays_its_own(app, monkeypatch):
    """Without a time limit (the kiosk's setting) a session's token is signed once and reused;
    another session or another secret never gets it. With a time limit every token is signed
    afresh (its timestamp then counts). Shown to fail with the kept tokens keyed by the secret
    alone (the second session gets the first's token)."""
    assert app.config["WTF_CSRF_TIME_LIMIT"] is None
    now = [1_764_400_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])

    def token_for(raw: str) -> str:
        with app.test_request_context("/"):
            g.pop("csrf_token", None)  # the fixture's app context outlives each request context
            session["csrf_token"] = raw
            token = csrf_token()
            validate_csrf(token)
            return token

    first = token_for("1" * 40)
    now[0] += 100
    assert token_for("1" * 40) == first  # signed once
    second = token_for("2" * 40)
    assert second != first
    with app.test_request_context("/"):
        session["csrf_token"] = "2" * 40
        with pytest.raises(ValidationError):
            validate_csrf(first)
    app.config["WTF_CSRF_SECRET_KEY"] = "another-csrf-secret"
    assert token_for("1" * 40) != first
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    signed = token_for("1" * 40)
    now[0] += 100
    assert token_for("1" * 40) != signed  # a new timestamp each time


def test_threads_missing_the_same_day_together_compute_it_once(app, haircut, monkeypatch):
    """After a commit every thread serving the page misses the kept day at once; one computes
    it and the others wait for its entry (AvailabilityCache.get_or_compute). Each of the four
    threads computing on its own gives 4 calls. A generation move during the round (a
    connection new to the pool counts as one, kiosk.cache) splits the readers into two
    generations, each computed once; the moves are counted rather than hoped away. It failed
    in CI twice: a waiting thread refused the entry computed at a later ``now`` than its own
    request's (1 run in 6), and under load (5 processes on 2 cores) one move made every reader
    of the older generation compute in turn (4 calls), as the older value could not be stored."""
    calls = []
    real = services.availability

    def slow_availability(*args, **kwargs):
        calls.append(1)
        time.sleep(0.3)  # long enough for the other threads to miss the cache meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "availability", slow_availability)
    moves = []
    real_bump = commit_generation.bump

    def counted_bump() -> None:
        moves.append(1)
        real_bump()

    monkeypatch.setattr(commit_generation, "bump", counted_bump)
    statuses = []
    start = threading.Barrier(4)
    page = f"/booking/{haircut.id}"

    def tap() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(client.get(page, headers={"HX-Request": "true", "HX-Target": "booking-day"}).status_code)

    def four_taps() -> None:
        threads = [threading.Thread(target=tap) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    four_taps()  # the pool's connections are seen (a connection never seen moves the generation on)
    four_taps()
    availability_cache.invalidate()  # as a booking does
    calls.clear()
    moves.clear()
    four_taps()
    assert statuses == [200] * 12
    assert 1 <= len(calls) <= 1 + len(moves)


def test_a_waiting_reader_takes_the_entry_computed_while_it_waited():
    """get_or_compute on its own, without a server: readers whose requests began before the
    computing thread's (an earlier ``now``) take its entry; a reader under an older generation
    does not. Fixed generation, no pool: exactly one computation. The computation is held until
    the three others are waiting for it (not a sleep: under load a thread can start late)."""
    cache = AvailabilityCache()
    generation = commit_generation.value
    base = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    calls = []
    entered = threading.Event()
    waiting = threading.Semaphore(0)
    real_lock = cache._computing_lock

    def counted_lock(key: tuple) -> threading.Lock:
        waiting.release()  # this reader has taken its waiting time and now asks for the lock
        return real_lock(key)

    cache._computing_lock = counted_lock  # type: ignore[method-assign]

    def compute(now: datetime, hold: bool = False):
        def run():
            calls.append(now)
            entered.set()
            for _ in range(4 if hold else 0):  # its own ask for the lock, then the three followers'
                assert waiting.acquire(timeout=10)
            return now + timedelta(minutes=5), f"view at {now:%H:%M:%S.%f}"

        return run

    answers = {}

    def reader(offset_ms: int) -> None:
        now = base + timedelta(milliseconds=offset_ms)
        answers[offset_ms] = cache.get_or_compute(("day",), generation, now, compute(now, hold=offset_ms == 50))

    leader = threading.Thread(target=reader, args=(50,))  # the latest request computes...
    leader.start()
    entered.wait(5)
    followers = [threading.Thread(target=reader, args=(ms,)) for ms in (0, 10, 20)]  # ...earlier ones wait
    for thread in followers:
        thread.start()
    for thread in [leader, *followers]:
        thread.join()
    cache._computing_lock = real_lock  # type: ignore[method-assign]
    assert len(calls) == 1
    assert set(answers.values()) == {"view at 01:00:00.050000"}
    # Afterwards a plain read before the entry's moment (a clock stepped back) is not answered from it.
    assert cache.get(("day",), generation, base) is None
    assert cache.get_or_compute(("day",), generation, base, compute(base)) == "view at 01:00:00.000000"
    assert len(calls) == 2
    # A reader under another generation computes for itself and stores nothing (the generation moved).
    assert cache.get_or_compute(("day",), generation - 1, base + timedelta(seconds=1), compute(base + timedelta(seconds=1))) == "view at 01:00:01.000000"
    assert len(calls) == 3
    assert cache.get(("day",), generation, base + timedelta(seconds=1)) == "view at 01:00:00.000000"


def test_readers_of_two_generations_compute_once_each():
    """The generation moves on while readers wait (a connection new to the pool, or a commit):
    what was computed under the old generation cannot be stored, yet the old generation's other
    readers take it, in whatever order the lock serves them; the new generation's reader
    computes once. Exactly 2 computations for 2 old + 2 new readers."""
    cache = AvailabilityCache()
    old = commit_generation.value
    base = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    calls = []
    entered = threading.Event()

    def compute(generation: int):
        def run():
            calls.append(generation)
            entered.set()
            time.sleep(0.2)
            return base + timedelta(minutes=5), f"view of generation {generation - old}"

        return run

    answers: dict[str, str] = {}

    def reader(name: str, generation: int) -> None:
        answers[name] = cache.get_or_compute(("day",), generation, base, compute(generation))

    first = threading.Thread(target=reader, args=("old 1", old))
    first.start()
    entered.wait(5)
    commit_generation.bump()  # the old value can no longer be stored
    new = commit_generation.value
    others = [threading.Thread(target=reader, args=args) for args in (("new 1", new), ("old 2", old), ("new 2", new))]
    for thread in others:
        thread.start()
        time.sleep(0.02)
    for thread in [first, *others]:
        thread.join()
    assert sorted(calls) == [old, new]
    assert answers == {"old 1": "view of generation 0", "old 2": "view of generation 0", "new 1": "view of generation 1", "new 2": "view of generation 1"}
    assert cache.get(("day",), new, base) == "view of generation 1"  # only the current one was stored
