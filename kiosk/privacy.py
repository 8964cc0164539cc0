"""Personal data on screen and in logs: phones as 138****5678, names as 张*华.

install_log_masking() makes every log record of the process mask a mainland mobile number
that slips into a message, before any handler writes it.
"""

from __future__ import annotations

import logging
import re
import traceback

from flask import Flask

# 11 digits starting 1[3-9], not part of a longer digit run (an order number, a barcode).
PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phone(phone: str) -> str:
    """138****5678. Partial input (while typing) keeps the same positions hidden."""
    digits = phone.strip()
    if len(digits) <= 3:
        return digits
    middle = "*" * min(4, len(digits) - 3)
    return digits[:3] + middle + digits[7:]


def mask_name(name: str) -> str:
    """张*华 for three characters, 张* for two, 欧**明 for four; Latin names keep the first letter."""
    name = name.strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phones_in_text(text: str) -> str:
    return PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def install_log_masking(app: Flask | None = None) -> None:
    """Mask phones in every log record of the process, whichever logger or handler writes it.

    A record factory (rather than a filter on some loggers) also covers records from
    libraries and from loggers created later, such as waitress's or a test's capture handler.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_kiosk_masks_phones", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's problem to report, not ours
            return record
        masked = mask_phones_in_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the traceback is masked too.
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = mask_phones_in_text(text)
        return record

    factory._kiosk_masks_phones = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class PhoneMaskingFilter(logging.Filter):
    """The same masking as a handler filter: kept on every handler the kiosk installs (the log
    file included), so a record made before install_log_masking ran, or by a library with its
    own record factory, is masked on its way out too."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's problem to report
            return True
        masked = mask_phones_in_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_phones_in_text("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        elif record.exc_text:
            record.exc_text = mask_phones_in_text(record.exc_text)
        return True
