"""The staff status (watchdog) page's figures: read only, nothing here writes."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from kiosk.ops import backup, doctor


@dataclass(frozen=True)
class StatusReport:
    checks: list[doctor.Check]
    failed: int
    started: datetime
    uptime: timedelta
    last_backup: Any
    disk_free_mb: int
    disk_total_mb: int
    database_mb: float
    last_sync_at: datetime | None


def status_report(session: Session, config: Mapping[str, Any], instance: Path, *, now: datetime, started: datetime) -> StatusReport:
    """Uptime, the last backup and sync, disk and database size, and the doctor's checks (with a
    short timeout: this is a page). Plain values only, so the caller can end the read before
    rendering."""
    from kiosk.sync.models import SyncState

    checks = doctor.run_checks(doctor.Context(config, instance, session, now, timeout=2.0))
    state = session.get(SyncState, 1)
    usage = shutil.disk_usage(instance)
    return StatusReport(
        checks=checks,
        failed=sum(1 for c in checks if c.failed),
        started=started,
        uptime=now - started,
        last_backup=backup.last_backup(instance),
        disk_free_mb=usage.free // (1024 * 1024),
        disk_total_mb=usage.total // (1024 * 1024),
        database_mb=round(doctor.database_size(config) / (1024 * 1024), 1),
        last_sync_at=state.last_success_at if state else None,
    )
