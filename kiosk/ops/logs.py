"""The kiosk's log file, rotated by size (`kiosk serve` installs it).

LOG_FILE (relative to instance/, "" for standard error only), LOG_MAX_BYTES and
LOG_BACKUP_COUNT: kiosk.log, kiosk.log.1 … kiosk.log.N, the oldest dropped, so months of running
unattended never fill the disk. Every handler carries kiosk.privacy.PhoneMaskingFilter (phones
are masked before a line is written, the record factory of install_log_masking aside).
"""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kiosk.privacy import PhoneMaskingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HANDLER_NAME = "kiosk-file"


def log_file(config: Mapping[str, Any], instance_path: Path) -> Path | None:
    name = str(config.get("LOG_FILE") or "").strip()
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else instance_path / path


def install_file_logging(config: Mapping[str, Any], instance_path: Path, *, logger: logging.Logger | None = None) -> logging.Handler | None:
    """A RotatingFileHandler on the root logger (waitress's and the app's records), once."""
    path = log_file(config, instance_path)
    if path is None:
        return None
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if handler.get_name() == HANDLER_NAME:
            return handler
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=int(config.get("LOG_MAX_BYTES", 10 * 1024 * 1024)), backupCount=int(config.get("LOG_BACKUP_COUNT", 5)), encoding="utf-8"
    )
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(PhoneMaskingFilter())
    logger.addHandler(handler)
    if logger is logging.getLogger() and not any(type(h) is logging.StreamHandler for h in logger.handlers):
        # The journal keeps its copy too: with a handler on the root logger, waitress's
        # logging.basicConfig() no longer adds the standard-error one, so add it here.
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(stream)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    ensure_masking(logger)
    return handler


def ensure_masking(logger: logging.Logger | None = None) -> None:
    """Put the masking filter on every handler of the logger that lacks it."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, PhoneMaskingFilter) for f in handler.filters):
            handler.addFilter(PhoneMaskingFilter())
