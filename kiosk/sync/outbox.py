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
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.db import utcnow
from kiosk.sync.models import OutboxEvent, SyncState
from kiosk.sync.protocol import seal

SEALED_FIELD = "person_sealed"
UNSEALED_FIELD = "person_phone"


def hub_public_key(session: Session) -> str:
    return session.scalar(select(SyncState.hub_public_key).where(SyncState.id == 1)) or ""


def person_field(session: Session, phone: str | None) -> dict[str, str]:
    """The payload entry for a person: {"person_sealed": …}, or nothing for no phone."""
    if not phone:
        return {}
    key = hub_public_key(session)
    return {SEALED_FIELD: seal(key, phone)} if key else {UNSEALED_FIELD: phone}


def record_event(session: Session, type: str, payload: dict[str, Any], *, occurred_at: datetime | None = None, schema_version: int = 1) -> OutboxEvent:
    event = OutboxEvent(event_id=str(uuid.uuid4()), type=type, schema_version=schema_version, occurred_at=occurred_at or utcnow(), payload=payload)
    session.add(event)
    return event
