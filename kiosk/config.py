"""Configuration: defaults, then instance/kiosk.toml, then KIOSK_* environment variables,
then whatever the caller of create_app() passes (tests).

Every key is an upper-case Flask config key. In the TOML file and in the environment the
key is written without a prefix in the file (``CENTRE_CODE = "XH-CY-CY1"``) and with the
``KIOSK_`` prefix in the environment (``KIOSK_CENTRE_CODE=XH-CY-CY1``).
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE_NAME = "kiosk.toml"
DATABASE_FILE_NAME = "kiosk.sqlite3"

DEFAULTS: dict[str, Any] = {
    # Which centre this kiosk belongs to (see the Centre table and DESIGN.md §10).
    "CENTRE_CODE": "XH-CY-CY1",
    "CENTRE_NAME": "翠苑街道翠苑一区党群服务中心",
    # "centre" (default) or "hub" (the district hub, later).
    "ROLE": "centre",
    # Hub only: after a push, each worker's background roll-up waits this many seconds so the
    # batches that follow join it (kiosk.hub.rollup); negative turns the thread off (the
    # dashboard and `kiosk hub rollup` still catch up).
    "HUB_ROLLUP_DELAY": 0.25,
    # SQLite in instance/ unless a URL is given (KIOSK_DATABASE_URL).
    "DATABASE_URL": "",
    # Real secrets are written to instance/kiosk.toml by `kiosk init`; this placeholder only
    # lets a bare checkout start, and `kiosk serve` refuses to run with it.
    "SECRET_KEY": "insecure-development-key",
    # Signs member cards and check-in codes (kiosk.signing). OLD_SIGNING_KEYS are still accepted
    # after a rotation, so printed cards keep working until the old key is removed.
    "SIGNING_KEY": "",
    "OLD_SIGNING_KEYS": [],
    # Visitor session: ask "还在使用吗？" after IDLE_SECONDS, reset IDLE_GRACE_SECONDS later.
    "IDLE_SECONDS": 60,
    "IDLE_GRACE_SECONDS": 20,
    # A finished task (check-in done, pickup code, later a booking) stays this long with a
    # countdown and a 完成 button, then the visit ends (DESIGN.md §8).
    "FINISHED_TASK_SECONDS": 15,
    # Elder mode gives longer (copying a ticket number takes time), and 「多看一会」 adds
    # FINISHED_TASK_MORE_SECONDS, at most FINISHED_TASK_MORE_TIMES times.
    "FINISHED_TASK_ELDER_SECONDS": 30,
    "FINISHED_TASK_MORE_SECONDS": 15,
    "FINISHED_TASK_MORE_TIMES": 2,
    # Centres with many elderly visitors (e.g. 翠苑一区) can start every visit in elder mode.
    "ELDER_MODE_DEFAULT": False,
    "DEFAULT_LOCALE": "zh",
    "TIMEZONE": "Asia/Shanghai",
    # A scan longer than this is refused before any parsing (a USB scanner gone wrong, a paste).
    "MAX_SCAN_LENGTH": 160,
    # Check-in (DESIGN.md §4). A rotating QR changes every ROTATING_QR_SECONDS and is accepted
    # for one more step; a phone that opened it has CHECKIN_PASS_MINUTES to type its number.
    "ROTATING_QR_SECONDS": 20,
    "CHECKIN_PASS_MINUTES": 10,
    # A repeatable activity refuses a second check-in by the same person within this time.
    "REPEAT_CHECKIN_MINUTES": 5,
    # The address visitors' phones reach on the centre's Wi-Fi (printed into poster QR codes),
    # e.g. "http://192.168.1.20:8000". Empty: the address the staff page was opened with.
    "PUBLIC_BASE_URL": "",
    # Without PUBLIC_BASE_URL, only these host names (as the staff page was opened) go into
    # printed codes; any other Host header gives the loopback address instead.
    "PUBLIC_HOSTS": ["127.0.0.1", "localhost"],
    # Largest request body (uploads included); a reward picture is at most 2 MB.
    "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
    # Which kiosk of the centre wrote a record (a centre may have a second kiosk or a tablet).
    "DEVICE_ID": "kiosk-1",
    # The district's key for pseudonymising phones in what is sent to the hub; all centres of
    # a district share it (the district gives it out). `kiosk init` writes a random one.
    "DISTRICT_KEY": "",
    # Version of the privacy notice a member consents to at registration (shown on the form).
    "PRIVACY_NOTICE_VERSION": "2026-11",
    # The kiosk is served over plain HTTP on the centre's LAN; set true behind TLS.
    "SESSION_COOKIE_SECURE": False,
    "LOGIN_RATE_LIMIT": "5 per minute",
    # A staff session ends after this many minutes without a request (the kiosk PC may be
    # left logged in); a signed session cookie is never accepted after SESSION_HOURS.
    "STAFF_IDLE_MINUTES": 15,
    # Member searches per staff account (each is audited; phones are masked to staff).
    "MEMBER_SEARCH_RATE_LIMIT": "30 per minute",
    "SESSION_HOURS": 12,
    # Kiosk keypad check-ins: per enrolled device, and per number whichever device typed it.
    "KIOSK_CHECKIN_RATE_LIMIT": "60 per minute",
    "NUMBER_CHECKIN_RATE_LIMIT": "6 per minute",
    # Per phone (address) on the centre's Wi-Fi: enough for a family, not for a script.
    "PHONE_CHECKIN_RATE_LIMIT": "30 per minute",
    # Successful check-ins with one phone's pass (a family shares a phone; a script does not).
    "PASS_CHECKIN_LIMIT": "3 per 10 minutes",
    # Card numbers typed on the kiosk (members.services.card_number): slows down guessing.
    "CARD_NUMBER_RATE_LIMIT": "10 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    # Said explicitly: Flask-Limiter's init_app otherwise takes the shared Limiter's last value,
    # so one app made with limits off (a test, a bench) would switch them off for every later app.
    "RATELIMIT_ENABLED": True,
    # A thermal receipt printer for booking tickets (ESC/POS through python-escpos):
    # "" (none: tickets only on screen), "usb:0x0416:0x5011", "network:192.168.1.50", "file:/dev/usb/lp0".
    "RECEIPT_PRINTER": "",
    "SERVE_HOST": "127.0.0.1",
    "SERVE_PORT": 8000,
    "SERVE_THREADS": 8,
    # Open connections waitress accepts (idle ones included) and seconds before it closes an
    # idle one (see docs/deploy.md).
    "SERVE_CONNECTION_LIMIT": 1000,
    "SERVE_CHANNEL_TIMEOUT": 30,
    # Personal data (PIPL): `kiosk privacy purge` unlinks check-ins, bookings and returned loans
    # older than this from the person (3 years). Exports go to PRIVACY_EXPORT_DIR
    # ("" = instance/privacy-exports).
    "PRIVACY_RETENTION_DAYS": 3 * 365,
    "PRIVACY_EXPORT_DIR": "",
    # `kiosk backup`: where ("" = instance/backups; a USB stick is just another --dest) and how
    # many dated backups to keep.
    "BACKUP_DIR": "",
    "BACKUP_KEEP": 14,
    # `kiosk serve` writes its log here (relative to instance/; "" = standard error only),
    # rotated at LOG_MAX_BYTES keeping LOG_BACKUP_COUNT old files.
    "LOG_FILE": "kiosk.log",
    "LOG_MAX_BYTES": 10 * 1024 * 1024,
    "LOG_BACKUP_COUNT": 5,
    # `kiosk doctor`: least free disk space, and the most the clock may differ from the hub's.
    "DOCTOR_MIN_FREE_MB": 1024,
    "DOCTOR_MAX_CLOCK_SKEW_SECONDS": 60,
    # glibc's allocator under `kiosk serve` (kiosk.ops.allocator): at most this many arenas
    # (0: glibc's default, 8 per core), and the free memory inside them given back to the
    # kernel every MALLOC_TRIM_SECONDS (0: never). Measured in docs/benchmarks.md ("Soak").
    "MALLOC_ARENA_MAX": 2,
    "MALLOC_TRIM_SECONDS": 30,
    # Benchmarks only (bench/soak.py --probe): `kiosk serve` traces memory and writes a probe
    # into this folder on SIGUSR1 (kiosk.ops.memprobe). Empty: off, nothing installed.
    "MEMORY_PROBE_DIR": "",
    # How many frames of each allocation the probe traces (0: its figures only, no tracemalloc).
    "MEMORY_PROBE_FRAMES": 4,
}

SUPPORTED_LOCALES = ("zh", "en")


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to do (no traceback)."""


def _coerce(raw: str, like: Any) -> Any:
    """Environment variables are strings; give them the type of the default they replace."""
    if isinstance(like, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _pool_options(config: dict[str, Any]) -> dict[str, Any]:
    """A file SQLite database keeps one pooled connection per waitress thread and more. With
    SQLAlchemy's default (5 kept, 10 overflow) the 8 threads opened and closed a connection on
    most requests under load: each new connection ran the connect pragmas (journal_mode=WAL
    takes a lock) and, never seen by kiosk.cache before, moved the commit generation on, which
    emptied the availability and device caches (bench/booking.py: 29 connects in 5 s)."""
    url = str(config["SQLALCHEMY_DATABASE_URI"])
    if not url.startswith("sqlite") or url in {"sqlite://", "sqlite:///:memory:"} or "mode=memory" in url:
        return {}
    return {"pool_size": 2 * int(config["SERVE_THREADS"]) + 4, "max_overflow": 16}


def load_config(instance_path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = dict(DEFAULTS)
    config_file = instance_path / CONFIG_FILE_NAME
    if config_file.exists():
        try:
            with config_file.open("rb") as fh:
                config.update({k.upper(): v for k, v in tomllib.load(fh).items()})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{config_file} is not valid TOML ({error}). Fix it, or restore it from the backup kept with the database.") from None
    for name, value in os.environ.items():
        if name.startswith("KIOSK_") and name not in {"KIOSK_INSTANCE_PATH"}:
            key = name.removeprefix("KIOSK_")
            config[key] = _coerce(value, DEFAULTS.get(key, ""))
    if overrides:
        config.update(overrides)
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{instance_path / DATABASE_FILE_NAME}"
    config["SQLALCHEMY_DATABASE_URI"] = config["DATABASE_URL"]
    # Error messages must not echo SQL parameters (phones) into logs or tracebacks.
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"hide_parameters": True, **_pool_options(config)})
    config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=float(config["SESSION_HOURS"])))
    # A kiosk page stays open for hours: the CSRF token lives as long as the visitor session,
    # which the idle timer ends anyway.
    config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    config.setdefault("BABEL_DEFAULT_LOCALE", config["DEFAULT_LOCALE"])
    config.setdefault("BABEL_DEFAULT_TIMEZONE", config["TIMEZONE"])
    config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(Path(__file__).parent / "translations"))
    return config


def instance_path_from_env() -> Path:
    return Path(os.environ.get("KIOSK_INSTANCE_PATH", PROJECT_ROOT / "instance")).resolve()
