"""`kiosk doctor` (and the staff status page): is this kiosk fit to run unattended?

Each check answers ok (✓), failed (✗, with what to do, in the staff's language) or not
applicable (–, e.g. no printer configured). Plain functions over the app's config, its
instance folder and a database session; network checks have short time-outs.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.orm import Session

from kiosk.config import CONFIG_FILE_NAME
from kiosk.db import utcnow
from kiosk.i18n import _l
from kiosk.ops import backup as backups

OK, FAILED, NOT_APPLICABLE = "ok", "failed", "n/a"
SYMBOLS = {OK: "✓", FAILED: "✗", NOT_APPLICABLE: "–"}
BACKUP_MAX_AGE = timedelta(days=2)


@dataclass(frozen=True)
class Check:
    key: str
    title: Any  # lazy string
    state: str
    detail: Any = ""
    fix: Any = ""

    @property
    def failed(self) -> bool:
        return self.state == FAILED

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.state]


@dataclass(frozen=True)
class Context:
    config: Mapping[str, Any]
    instance_path: Path
    session: Session
    now: datetime
    timeout: float = 5.0
    # Injected in tests: GET a URL, answer (status, headers); raises OSError when unreachable.
    fetch: Callable[[str, float], tuple[int, Mapping[str, str]]] | None = None


def _fetch(url: str, timeout: float) -> tuple[int, Mapping[str, str]]:
    request = urllib.request.Request(url, headers={"User-Agent": "centre-kiosk-doctor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers or {})


def check_config(ctx: Context) -> Check:
    from kiosk.security import configuration_problems

    title = _l("Configuration and secrets")
    missing = configuration_problems(ctx.config)
    if missing:
        return Check(
            "config",
            title,
            FAILED,
            _l("Missing: %(keys)s", keys=", ".join(missing)),
            _l("Run `kiosk init` (it writes new secrets), or restore instance/kiosk.toml from the backup if members already hold cards."),
        )
    config_file = ctx.instance_path / CONFIG_FILE_NAME
    if config_file.exists() and config_file.stat().st_mode & 0o077:
        return Check(
            "config", title, FAILED, _l("%(path)s can be read by other users of this PC.", path=config_file), _l("Run: chmod 600 %(path)s", path=config_file)
        )
    return Check("config", title, OK, _l("Secrets present."))


def _database_file(ctx: Context) -> Path | None:
    uri = str(ctx.config.get("SQLALCHEMY_DATABASE_URI", ""))
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def check_database(ctx: Context) -> Check:
    title = _l("Database integrity")
    path = _database_file(ctx)
    if path is None:
        return Check("database", title, NOT_APPLICABLE, _l("Not an SQLite database (the hub): check PostgreSQL with its own tools."))
    if not path.exists():
        return Check(
            "database", title, FAILED, _l("There is no database at %(path)s.", path=path), _l("Run `kiosk init`, or `kiosk restore` the latest backup.")
        )
    problem = backups.integrity(path, quick=True)
    if problem != "ok":
        return Check(
            "database",
            title,
            FAILED,
            _l("PRAGMA quick_check says: %(problem)s", problem=problem[:200]),
            _l("Stop the kiosk and restore the latest backup: kiosk restore FILE (see docs/deploy.md)."),
        )
    return Check("database", title, OK, _l("quick_check ok."))


def check_migrations(ctx: Context) -> Check:
    from alembic.script import ScriptDirectory

    import kiosk

    title = _l("Database schema")
    head = ScriptDirectory(str(Path(kiosk.__file__).parent / "migrations")).get_current_head()
    try:
        current = ctx.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - no table: never migrated
        ctx.session.rollback()
        current = None
    finally:
        ctx.session.rollback()
    if current != head:
        return Check(
            "migrations",
            title,
            FAILED,
            _l("At %(current)s, the software needs %(head)s.", current=current or "—", head=head),
            _l("Back up, then run `kiosk db upgrade`."),
        )
    return Check("migrations", title, OK, _l("Up to date (%(head)s).", head=head))


def check_disk(ctx: Context) -> Check:
    title = _l("Disk space")
    usage = shutil.disk_usage(ctx.instance_path)
    free_mb = usage.free // (1024 * 1024)
    least = int(ctx.config.get("DOCTOR_MIN_FREE_MB", 1024))
    detail = _l("%(free)d MB free of %(total)d MB.", free=free_mb, total=usage.total // (1024 * 1024))
    if free_mb < least:
        return Check("disk", title, FAILED, detail, _l("Free at least %(least)d MB: remove old backups or files from this PC.", least=least))
    return Check("disk", title, OK, detail)


def check_backup(ctx: Context) -> Check:
    title = _l("Backups")
    last = backups.last_backup(ctx.instance_path)
    if last is None:
        return Check(
            "backup", title, FAILED, _l("No backup has been made on this PC."), _l("Run `kiosk backup` and enable the nightly timer (docs/deploy.md).")
        )
    age = ctx.now - last["at"]
    detail = _l("Last backup %(when)s: %(path)s", when=last["at"].strftime("%Y-%m-%d %H:%M UTC"), path=last["path"])
    if age > BACKUP_MAX_AGE:
        return Check(
            "backup", title, FAILED, detail, _l("The nightly backup has not run for more than two days: check `systemctl status centre-kiosk-backup.timer`.")
        )
    return Check("backup", title, OK, detail)


def _hub_url(ctx: Context) -> str:
    from kiosk.sync.models import SyncState

    try:
        state = ctx.session.get(SyncState, 1)
        return state.hub_url if state is not None and state.key_id else ""
    except Exception:  # noqa: BLE001 - no sync table yet (schema behind): the schema check says so
        return ""
    finally:
        ctx.session.rollback()


def check_hub(ctx: Context) -> list[Check]:
    """Reachability and clock skew: one unsigned GET of the hub's public-key endpoint."""
    reach, clock = _l("District hub"), _l("Clock")
    url = _hub_url(ctx)
    if not url:
        skip = _l("Not enrolled with a district hub.")
        return [Check("hub", reach, NOT_APPLICABLE, skip), Check("clock", clock, NOT_APPLICABLE, skip)]
    fetch = ctx.fetch or _fetch
    try:
        sent = utcnow()
        status, headers = fetch(url.rstrip("/") + "/api/sync/v1/hub-key", ctx.timeout)
        received = utcnow()
    except (OSError, ValueError) as error:
        fix = _l("Check the network cable or Wi-Fi and that %(url)s opens from this PC; the kiosk keeps its records until the hub is back.", url=url)
        return [
            Check("hub", reach, FAILED, _l("%(url)s cannot be reached: %(error)s", url=url, error=getattr(error, "reason", error)), fix),
            Check("clock", clock, NOT_APPLICABLE, _l("Needs the hub.")),
        ]
    checks = []
    if status != 200:
        checks.append(
            Check("hub", reach, FAILED, _l("%(url)s answered %(status)s.", url=url, status=status), _l("Tell the district: their hub answers with an error."))
        )
    else:
        checks.append(Check("hub", reach, OK, _l("%(url)s answers.", url=url)))
    date = {k.lower(): v for k, v in headers.items()}.get("date")
    if not date:
        checks.append(Check("clock", clock, NOT_APPLICABLE, _l("The hub sent no time.")))
        return checks
    hub_time = parsedate_to_datetime(date)
    middle = sent + (received - sent) / 2
    skew = (middle - hub_time).total_seconds()
    limit = int(ctx.config.get("DOCTOR_MAX_CLOCK_SKEW_SECONDS", 60))
    detail = _l("This PC is %(seconds)d seconds off the hub's clock.", seconds=round(skew))
    if abs(skew) > limit:
        checks.append(
            Check(
                "clock",
                clock,
                FAILED,
                detail,
                _l("Set the time: sudo timedatectl set-ntp true (the hub refuses a kiosk more than 5 minutes off; check-in codes depend on the time)."),
            )
        )
    else:
        checks.append(Check("clock", clock, OK, detail))
    return checks


def check_printer(ctx: Context) -> Check:
    title = _l("Receipt printer")
    spec = str(ctx.config.get("RECEIPT_PRINTER") or "").strip()
    if not spec:
        return Check("printer", title, NOT_APPLICABLE, _l("None configured: tickets are shown on screen only."))
    kind, _, rest = spec.partition(":")
    fix = _l("Check that the printer is on, has paper and is connected; RECEIPT_PRINTER is %(spec)s.", spec=spec)
    if kind == "network":
        host, _, port = rest.partition(":")
        try:
            with socket.create_connection((host, int(port or 9100)), timeout=ctx.timeout):
                pass
        except (OSError, ValueError) as error:
            return Check("printer", title, FAILED, _l("No answer from %(host)s: %(error)s", host=rest, error=error), fix)
        return Check("printer", title, OK, _l("%(host)s answers.", host=rest))
    if kind == "file":
        path = Path(rest)
        if not path.exists() or not os.access(path, os.W_OK):
            return Check("printer", title, FAILED, _l("%(path)s is missing or not writable.", path=path), fix)
        return Check("printer", title, OK, _l("%(path)s is ready.", path=path))
    if kind == "usb":
        vendor, _, product = (part.lower().removeprefix("0x") for part in rest.partition(":"))
        for device in Path("/sys/bus/usb/devices").glob("*"):
            try:
                if (device / "idVendor").read_text().strip() == vendor.zfill(4) and (device / "idProduct").read_text().strip() == product.zfill(4):
                    return Check("printer", title, OK, _l("USB printer %(id)s is connected.", id=rest))
            except OSError:
                continue
        return Check("printer", title, FAILED, _l("USB printer %(id)s is not connected.", id=rest), fix)
    if kind == "dummy":
        return Check("printer", title, OK, _l("Test printer."))
    return Check(
        "printer", title, FAILED, _l("Unknown printer setting %(spec)s.", spec=spec), _l("Use usb:VENDOR:PRODUCT, network:ADDRESS or file:/dev/usb/lp0.")
    )


def _is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"} or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_public_address(ctx: Context) -> Check:
    """The address printed into QR codes must be one a visitor's phone on the Wi-Fi reaches."""
    title = _l("Address in QR codes")
    base = str(ctx.config.get("PUBLIC_BASE_URL") or "").strip()
    fix = _l(
        "Set PUBLIC_BASE_URL in instance/kiosk.toml to this PC's address on the centre Wi-Fi (e.g. http://192.168.1.20:8000), "
        'SERVE_HOST = "0.0.0.0", and restart the kiosk (README: Phones on the centre Wi-Fi).'
    )
    if not base:
        hosts = [h for h in ctx.config.get("PUBLIC_HOSTS", []) if not _is_loopback(h)]
        if not hosts:
            return Check("public_address", title, FAILED, _l("PUBLIC_BASE_URL is not set: codes carry 127.0.0.1, which a phone cannot open."), fix)
        return Check("public_address", title, OK, _l("Codes carry the address the staff page was opened with (%(hosts)s).", hosts=", ".join(hosts)))
    host = urlsplit(base).hostname or ""
    if _is_loopback(host):
        return Check("public_address", title, FAILED, _l("%(url)s is this PC's own loopback address: a phone cannot open it.", url=base), fix)
    serve_host = str(ctx.config.get("SERVE_HOST") or "")
    if _is_loopback(serve_host):
        return Check("public_address", title, FAILED, _l("Codes carry %(url)s but the server listens on %(host)s only.", url=base, host=serve_host), fix)
    return Check("public_address", title, OK, _l("Codes carry %(url)s.", url=base))


def run_checks(ctx: Context) -> list[Check]:
    checks = [check_config(ctx), check_database(ctx), check_migrations(ctx), check_disk(ctx), check_backup(ctx)]
    checks += check_hub(ctx)
    checks += [check_printer(ctx), check_public_address(ctx)]
    return checks


def database_size(config: Mapping[str, Any]) -> int:
    """Bytes of the database file and its WAL (0 for PostgreSQL)."""
    uri = str(config.get("SQLALCHEMY_DATABASE_URI", ""))
    if not uri.startswith("sqlite:///"):
        return 0
    path = Path(uri.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
