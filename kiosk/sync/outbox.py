"""The outbox: the one function every feature calls to tell the district something.

record_event() adds a row in the caller's transaction, so the district learns of a check-in
if and only if the check-in committed. The sync feature sends rows in seq order later.

People: a payload names a person only as ``person_sealed`` (from person_field()): the phone
sealed to the hub's public key. Only the hub can open it; it computes its own keyed pseudonym
and keeps no phone (threat model in docs/sync.md). Before the kiosk is enrolled it does not
know the hub's key yet: the phone waits in ``person_phone`` on this kiosk (which holds the
number anyway) and is sealed when the event is sent.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, object_session

from kiosk.cache import commit_generation
from kiosk.db import utcnow
from kiosk.sync.models import OutboxEvent, SyncState
from kiosk.sync.protocol import seal

SEALED_FIELD = "person_sealed"
UNSEALED_FIELD = "person_phone"


# The hub's key per database (engine), tagged with kiosk.cache's commit generation it was read under.
_HUB_KEYS: weakref.WeakKeyDictionary[object, tuple[int, str]] = weakref.WeakKeyDictionary()


_WROTE_STATE = "kiosk_sync_state_written"


@event.listens_for(SyncState, "after_insert")
@event.listens_for(SyncState, "after_update")
def _state_written(_mapper, _connection, state: SyncState) -> None:
    """A flushed, uncommitted change to the sync state: its session reads the key afresh until
    the transaction ends (the commit generation moves on only at the commit)."""
    session = object_session(state)
    if session is not None:
        session.info[_WROTE_STATE] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _transaction_ended(session: Session) -> None:
    session.info.pop(_WROTE_STATE, None)


def hub_public_key(session: Session) -> str:
    """The hub's public key ("" before enrolment), kept in process while kiosk.cache's commit
    generation stays the same (enrolment, a key roll, any commit here or elsewhere moves it on).
    A session with an unflushed change to the sync state reads it (and keeps nothing)."""
    changed = session.info.get(_WROTE_STATE) or (
        any(isinstance(item, SyncState) for item in (*session.new, *session.dirty)) if session.new or session.dirty else False
    )
    generation = None if changed else commit_generation.check(session)
    bind = session.get_bind()
    if generation is not None:
        cached = _HUB_KEYS.get(bind)
        if cached is not None and cached[0] == generation:
            return cached[1]
    key = session.scalar(select(SyncState.hub_public_key).where(SyncState.id == 1)) or ""
    if generation is not None and generation == commit_generation.value:
        _HUB_KEYS[bind] = (generation, key)
    return key


def person_field(session: Session, phone: str | None) -> dict[str, str]:
    """The payload entry for a person: {"person_sealed": …}, or nothing for no phone."""
    if not phone:
        return {}
    return person_field_for_key(hub_public_key(session), phone)


def person_field_for_key(hub_key: str, phone: str | None) -> dict[str, str]:
    """person_field() for a hub key already read: the phone sealed to the hub, or kept for
    sealing at send time before the kiosk is enrolled (no key yet)."""
    if not phone:
        return {}
    return {SEALED_FIELD: seal(hub_key, phone)} if hub_key else {UNSEALED_FIELD: phone}


# The hub's public key as last read inside a check-in's or a booking's unit of work, per
# database: the person is sealed with it before the write lock, and the unit compares it with
# the stored key in its own read and seals again only if they differ. Not hub_public_key()'s
# cache: that one holds only while kiosk.cache's commit generation stays the same, and every
# check-in and booking commits.
last_hub_keys: dict[str, str] = {}


def record_event(session: Session, type: str, payload: dict[str, Any], *, occurred_at: datetime | None = None, schema_version: int = 1) -> OutboxEvent:
    event = OutboxEvent(event_id=str(uuid.uuid4()), type=type, schema_version=schema_version, occurred_at=occurred_at or utcnow(), payload=payload)
    session.add(event)
    return event


def _zone() -> ZoneInfo:
    from flask import current_app, has_app_context

    return ZoneInfo(current_app.config["TIMEZONE"] if has_app_context() else "Asia/Shanghai")


CATCH_UP_DAYS = 31


def last_recorded_day(session: Session, type: str) -> date | None:
    """The latest day a ``type`` event names, or None."""
    latest = session.scalar(select(func.max(OutboxEvent.payload["day"].as_string())).where(OutboxEvent.type == type))
    return date.fromisoformat(latest) if latest else None


def once_a_day(type: str, record: Callable[[Session, date, ZoneInfo], None], *, now: Callable[[], datetime] = utcnow) -> Callable[[Session], None]:
    """A Feature.before_sync hook: ``record(session, day, zone)`` for the last complete local day
    (yesterday: the timer runs after midnight) unless the outbox already holds a ``type`` event
    for that day, so a second run the same night, or the staff's "sync now" in the afternoon,
    writes nothing. Days missed since the last recorded one (the PC was off, no sync ran) are
    recorded too, oldest first, up to CATCH_UP_DAYS back, so the district's series has no hole
    for a night the kiosk slept. ``record`` writes its event in its own write_transaction. Runs
    inside the sync lock, so the check and the write cannot race another sync run."""

    def hook(session: Session) -> None:
        zone = _zone()
        yesterday = now().astimezone(zone).date() - timedelta(days=1)
        last = last_recorded_day(session, type)
        session.rollback()  # end the read: record() starts its own unit of work
        first = yesterday if last is None else max(last + timedelta(days=1), yesterday - timedelta(days=CATCH_UP_DAYS - 1))
        day = first
        while day <= yesterday:
            record(session, day, zone)
            day += timedelta(days=1)

    return hook
