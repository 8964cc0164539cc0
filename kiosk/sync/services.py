"""`kiosk sync` and `kiosk enrol`: push the outbox to the hub in batches, then pull what the
district published. Plain functions over a Session and a HubClient (no Flask).

The hub owns the cursor: every run starts by asking the hub which sequence it holds
(``hello``) and sends from there, so a hub restored from an older backup gets back what it
lost, and a kiosk's own "sent" mark is only ever a copy of the hub's answer. Each batch is its
own short transaction on the kiosk, so visitors keep checking in while a sync runs.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kiosk.checkin.models import Activity, ActivityCategory, ActivityStatus, CheckinPolicy
from kiosk.db import utcnow, write_transaction
from kiosk.errors import KioskError
from kiosk.home.services import upsert_notice
from kiosk.i18n import _l
from kiosk.sync import protocol
from kiosk.sync.client import HubAnswer, HubClient, HubUnreachable
from kiosk.sync.models import DistrictItem, OutboxEvent, SyncState
from kiosk.sync.outbox import SEALED_FIELD, UNSEALED_FIELD

log = logging.getLogger("kiosk.sync")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0


class SyncError(KioskError):
    status = 409


class NotEnrolled(SyncError):
    pass


def sync_status(session: Session) -> SyncState:
    """This kiosk's sync state for reading: the row, or, before the first enrolment or sync run
    wrote it, a detached one with the defaults. Never inserts (a read ends with a rollback)."""
    state = session.get(SyncState, 1)
    if state is not None:
        return state
    return SyncState(id=1, hub_url="", centre_code="", key_id="", key_secret="", hub_public_key="", acked_seq=0, pull_cursor=0, last_error="")


def sync_state(session: Session) -> SyncState:
    """The sync state row for writing, inserted if missing: only inside a unit of work
    (write_transaction); readers use sync_status()."""
    state = session.get(SyncState, 1)
    if state is None:
        state = SyncState(id=1)
        session.add(state)
        session.flush()
    return state


def pending_count(session: Session) -> int:
    state = session.get(SyncState, 1)
    acked = state.acked_seq if state else 0
    return int(session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.id > acked)) or 0)


# ---- enrolment ----


def enrol(session: Session, client: HubClient, code: str) -> SyncState:
    """Exchange a one-time code for this centre's key; stores the key and the hub's public key."""
    try:
        answer = client.post_json(protocol.API_PREFIX + "/enrol", {"code": code.strip()}, signed=False)
    except HubUnreachable as error:
        raise SyncError("hub_unreachable", _l("The district hub cannot be reached: %(reason)s", reason=str(error)), status=503) from None
    if answer.status != 201:
        raise SyncError(answer.error or "enrol_refused", answer.data.get("message") or _l("The hub refused the enrolment code."), status=answer.status)
    with write_transaction(session):
        state = sync_state(session)
        state.hub_url = client.base_url
        state.centre_code = str(answer.data["centre"])
        state.key_id = str(answer.data["key_id"])
        state.key_secret = str(answer.data["secret"])
        state.hub_public_key = str(answer.data["hub_public_key"])
        state.enrolled_at = utcnow()
        state.acked_seq = 0
        state.last_error = ""
    return state


def client_for(state: SyncState, *, app_version: str, timeout: float = 60) -> HubClient:
    if not (state.hub_url and state.key_id and state.key_secret):
        raise NotEnrolled("not_enrolled", _l("This kiosk is not enrolled with the district hub yet (kiosk enrol CODE --hub URL)."))
    return HubClient(state.hub_url, state.key_id, state.key_secret, app_version=app_version, timeout=timeout)


def roll_key(session: Session, client: HubClient) -> SyncState:
    answer = client.request("POST", protocol.API_PREFIX + "/keys/roll")
    if answer.status != 201:
        raise SyncError(answer.error or "roll_refused", answer.data.get("message") or answer.error, status=answer.status)
    with write_transaction(session):
        state = sync_state(session)
        state.key_id, state.key_secret = str(answer.data["key_id"]), str(answer.data["secret"])
    client.key_id, client.secret = state.key_id, state.key_secret
    return state


# ---- one run ----


def run_before_sync(session: Session, hooks: Sequence[tuple[str, Callable[[Session], None]]]) -> list[str]:
    """Each feature's before_sync hook (kiosk.features.Feature), in feature order, before the
    push, so what they record goes out in the same run. A hook that fails is rolled back,
    logged and reported ("feature: error"); the others and the push still run."""
    failures = []
    for name, hook in hooks:
        try:
            hook(session)
            session.rollback()  # end a read the hook left open (its writes committed in write_transaction)
        except Exception as error:  # one feature's nightly figures never stop the sync
            session.rollback()
            log.exception("before_sync hook of %s failed", name)
            failures.append(f"{name}: {error}"[:300])
    return failures


@dataclass
class SyncReport:
    pushed: int = 0  # events the hub newly stored in this run
    batches: int = 0
    acked_seq: int = 0
    pending: int = 0  # still waiting when the run ended
    pulled: int = 0
    conflicts: list[str] = field(default_factory=list)
    error: str = ""  # empty: success
    retries: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class Backoff:
    """Exponential backoff with full jitter inside a time budget."""

    budget_seconds: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    base: float = BACKOFF_BASE_SECONDS
    cap: float = BACKOFF_CAP_SECONDS
    attempts: int = 0

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.budget_seconds

    def wait(self) -> bool:
        """Sleep before the next try; False when the budget would run out first."""
        delay = self.rng.uniform(0, min(self.cap, self.base * 2**self.attempts))
        if self.clock() + delay > self.deadline:
            return False
        self.attempts += 1
        self.sleep(delay)
        return True

    def succeeded(self) -> None:
        self.attempts = 0

    @property
    def expired(self) -> bool:
        return self.clock() >= self.deadline


def _wire_event(event: OutboxEvent, hub_public_key: str) -> dict[str, Any]:
    payload = dict(event.payload)
    phone = payload.pop(UNSEALED_FIELD, None)
    if phone:
        # Recorded before the kiosk knew the hub's key: sealed now, on the way out.
        payload[SEALED_FIELD] = protocol.seal(hub_public_key, phone)
    return {
        "seq": event.id,
        "event_id": event.event_id,
        "type": event.type,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at.isoformat(),
        "payload": payload,
    }


def _batch(session: Session, after: int, limit: int, hub_public_key: str) -> tuple[list[dict[str, Any]], bytes]:
    events = list(session.scalars(select(OutboxEvent).where(OutboxEvent.id > after).order_by(OutboxEvent.id).limit(limit)))
    wire = [_wire_event(e, hub_public_key) for e in events]
    session.rollback()  # end the read: nothing is held while the request is on the wire
    body = protocol.encode_batch(wire)
    while len(body) > protocol.MAX_BATCH_BYTES and len(wire) > 1:
        wire = wire[: len(wire) // 2]
        body = protocol.encode_batch(wire)
    return wire, body


def _record_ack(session: Session, acked: int, now: datetime) -> None:
    # In write_transaction (BEGIN IMMEDIATE): a plain read-then-write transaction could not be
    # upgraded once a visitor's check-in had committed meanwhile ("database is locked").
    with write_transaction(session):
        state = sync_state(session)
        state.acked_seq = acked
        session.execute(update(OutboxEvent).where(OutboxEvent.id <= acked, OutboxEvent.sent_at.is_(None)).values(sent_at=now))
        # A hub restored from a backup holds less than we thought: those events are pending again.
        session.execute(update(OutboxEvent).where(OutboxEvent.id > acked, OutboxEvent.sent_at.is_not(None)).values(sent_at=None))


def _call(backoff: Backoff, report: SyncReport, call: Callable[[], HubAnswer]) -> HubAnswer | None:
    """One request, retried with backoff while the hub is unreachable; None when the budget ran out."""
    while True:
        try:
            answer = call()
            backoff.succeeded()
            return answer
        except HubUnreachable as error:
            report.error = f"hub_unreachable: {error}"
            report.retries += 1
            if not backoff.wait():
                return None


def _refusal(answer: HubAnswer) -> str:
    message = answer.data.get("message") or ""
    return f"{answer.error or answer.status}: {message}".strip(": ")


def run_sync(
    session: Session,
    client: HubClient,
    *,
    budget_seconds: float = 1800,
    batch_size: int = protocol.MAX_BATCH_EVENTS,
    progress: Callable[[int, int], None] | None = None,
    backoff: Backoff | None = None,
    pull: bool = True,
) -> SyncReport:
    """Push everything pending, then pull. Safe to stop at any point and run again."""
    backoff = backoff or Backoff(budget_seconds)
    report = SyncReport()
    with write_transaction(session):
        sync_state(session).last_attempt_at = utcnow()
    try:
        _push_all(session, client, report, backoff, batch_size, progress)
        if pull and report.ok:
            _pull_all(session, client, report, backoff)
    finally:
        session.rollback()  # whatever a failed step left open
        report.pending = pending_count(session)
        with write_transaction(session):
            state = sync_state(session)
            if report.ok:
                state.last_success_at = utcnow()
                state.last_error = ""
            else:
                state.last_error = report.error[:2000]
    return report


def _push_all(session: Session, client: HubClient, report: SyncReport, backoff: Backoff, batch_size: int, progress) -> None:
    answer = _call(backoff, report, lambda: client.request("POST", protocol.API_PREFIX + "/hello"))
    if answer is None:
        return
    if answer.status != 200:
        report.error = _refusal(answer)
        return
    report.error = ""
    acked = int(answer.data["acked_seq"])
    hub_key = str(answer.data.get("hub_public_key") or "")
    if hub_key and hub_key != sync_status(session).hub_public_key:
        with write_transaction(session):
            sync_state(session).hub_public_key = hub_key  # the hub rolled its box key: seal to the new one
    state = sync_status(session)
    last = int(session.scalar(select(func.max(OutboxEvent.id))) or 0)
    if acked > last:
        report.error = f"hub_ahead: the hub holds events up to {acked} but this kiosk only has {last} (was the kiosk restored from a backup?)"
        session.rollback()
        return
    _record_ack(session, acked, utcnow())
    total = last - acked
    if progress:
        progress(0, total)
    start = acked
    while acked < last:
        wire, body = _batch(session, acked, batch_size, hub_key or state.hub_public_key)
        if not wire:
            break
        answer = _call(backoff, report, functools.partial(client.push, body))
        if answer is None:
            return
        if answer.status not in (200, 409):
            report.error = _refusal(answer)
            return
        report.error = ""
        report.batches += 1
        report.pushed += int(answer.data.get("inserted", 0))
        report.conflicts.extend(answer.data.get("conflicts", []))
        new_acked = int(answer.data["acked_seq"])
        _record_ack(session, new_acked, utcnow())
        if new_acked <= acked:
            report.error = f"no_progress: the hub acknowledged {new_acked} after a batch starting at {wire[0]['seq']}"
            return
        acked = new_acked
        if progress:
            progress(acked - start, total)
        last = int(session.scalar(select(func.max(OutboxEvent.id))) or 0)  # visitors kept checking in
        session.rollback()
    report.acked_seq = acked


def _pull_all(session: Session, client: HubClient, report: SyncReport, backoff: Backoff) -> None:
    while True:
        cursor = sync_status(session).pull_cursor
        session.rollback()  # end the read: nothing is held while the request is on the wire
        answer = _call(backoff, report, functools.partial(client.pull, cursor))
        if answer is None:
            return
        if answer.status != 200:
            report.error = _refusal(answer)
            return
        report.error = ""
        items = answer.data.get("items", [])
        with write_transaction(session):
            for item in items:
                apply_publication(session, item)
            sync_state(session).pull_cursor = int(answer.data.get("cursor", cursor))
        report.pulled += len(items)
        if not answer.data.get("more"):
            return


# ---- applying what the district published ----


def apply_publication(session: Session, item: dict[str, Any]) -> None:
    kind, key, deleted = str(item["kind"]), str(item["key"]), bool(item.get("deleted"))
    data = item.get("data") or {}
    mirror = session.scalar(select(DistrictItem).where(DistrictItem.kind == kind, DistrictItem.key == key))
    if mirror is None:
        mirror = DistrictItem(kind=kind, key=key, data={})
        session.add(mirror)
    mirror.revision, mirror.deleted = int(item["revision"]), deleted
    if not deleted:
        mirror.data = data
    mirror.received_at = utcnow()
    if kind == "activity":
        _apply_activity(session, key, data, deleted)
    elif kind == "notice":
        _apply_notice(session, key, data, deleted, mirror)
    session.flush()


def _time(raw: Any) -> datetime:
    value = datetime.fromisoformat(str(raw))
    if value.tzinfo is None:
        raise ValueError("naive time from the hub")
    return value


def _apply_activity(session: Session, key: str, data: dict[str, Any], deleted: bool) -> None:
    external = f"district:{key}"
    activity = session.scalar(select(Activity).where(Activity.external_key == external))
    if deleted:
        if activity is not None:
            activity.status = ActivityStatus.CANCELLED  # check-ins may point at it: never deleted
        return
    if activity is None:
        activity = Activity(external_key=external, source="district")
        session.add(activity)
    activity.title = str(data.get("title", ""))[:60]
    activity.category = ActivityCategory(data.get("category", "other"))
    activity.description = str(data.get("description", ""))
    activity.place = str(data.get("place", ""))[:60]
    activity.starts_at = _time(data["starts_at"])
    activity.ends_at = _time(data["ends_at"])
    activity.weekly = bool(data.get("weekly", False))
    activity.repeat_until = datetime.fromisoformat(data["repeat_until"]).date() if data.get("repeat_until") else None
    activity.capacity = data.get("capacity")
    activity.points = int(data.get("points", 0))
    activity.policy = CheckinPolicy(data.get("policy", "once"))
    activity.opens_minutes_before = int(data.get("opens_minutes_before", 30))
    activity.closes_minutes_after = int(data.get("closes_minutes_after", 30))
    activity.status = ActivityStatus(data.get("status", "active"))


def _apply_notice(session: Session, key: str, data: dict[str, Any], deleted: bool, mirror: DistrictItem) -> None:
    # upsert_notice also drops the home page's notice cache. A deleted notice expires now.
    old = mirror.data or {}
    source = old if deleted else data
    if deleted and not old:
        return
    upsert_notice(
        session,
        key=f"district:{key}",
        source="district",
        title=str(source.get("title", ""))[:200],
        body=str(source.get("body", "")),
        published_at=_time(source["published_at"]),
        expires_at=utcnow() if deleted else (_time(source["expires_at"]) if source.get("expires_at") else None),
    )
