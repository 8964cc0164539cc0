"""The outbox: the one function every feature calls to tell the district something.

record_event() adds a row in the caller's transaction, so the district learns of a check-in
if and only if the check-in committed. The sync feature sends rows in seq order later.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kiosk.db import utcnow
from kiosk.sync.models import OutboxEvent


def pseudonym(district_key: str, phone: str) -> str:
    """HMAC(district_key, phone): the same person across centres, never the number itself."""
    return hmac.new(district_key.encode(), phone.encode(), hashlib.sha256).hexdigest()


def record_event(session: Session, type: str, payload: dict[str, Any], *, occurred_at: datetime | None = None, schema_version: int = 1) -> OutboxEvent:
    event = OutboxEvent(event_id=str(uuid.uuid4()), type=type, schema_version=schema_version, occurred_at=occurred_at or utcnow(), payload=payload)
    session.add(event)
    return event
