"""The district's matrix of centres."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.centres.models import Centre, CentreLevel


@dataclass(frozen=True)
class CentreSpec:
    code: str
    name: str
    level: CentreLevel
    parent_code: str | None = None


def upsert_centres(session: Session, specs: list[CentreSpec]) -> int:
    """Insert or update centres by code, parents first. Returns how many were new."""
    by_code = {c.code: c for c in session.scalars(select(Centre))}
    created = 0
    for spec in specs:
        centre = by_code.get(spec.code)
        if centre is None:
            centre = Centre(code=spec.code)
            session.add(centre)
            by_code[spec.code] = centre
            created += 1
        centre.name = spec.name
        centre.level = spec.level
        centre.parent = by_code[spec.parent_code] if spec.parent_code else None
    session.flush()
    return created
