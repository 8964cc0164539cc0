"""The ticket on a thermal receipt printer (ESC/POS, 58/80 mm) through python-escpos.

RECEIPT_PRINTER in the config says which printer: "" (none: the ticket is only shown on screen),
"usb:0x0416:0x5011" (vendor:product), "network:192.168.1.50" or "file:/dev/usb/lp0". Chinese
is sent in GB18030 (the code page Chinese printers use: FS & selects their double-byte mode).
A printer that fails never stops a booking: the ticket is always on screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("kiosk.booking.printing")

ESC = b"\x1b"
GS = b"\x1d"
FS = b"\x1c"
CHINESE_ON = FS + b"&"  # double-byte (GB18030/GBK) mode on Chinese printers
CHINESE_OFF = FS + b"."


def open_printer(spec: str) -> Any | None:
    """A python-escpos printer for the RECEIPT_PRINTER setting, or None when none is set."""
    spec = (spec or "").strip()
    if not spec:
        return None
    from escpos import printer

    kind, _, rest = spec.partition(":")
    if kind == "usb":
        vendor, _, product = rest.partition(":")
        return printer.Usb(int(vendor, 16), int(product, 16))
    if kind == "network":
        return printer.Network(rest)
    if kind == "file":
        return printer.File(rest)
    if kind == "dummy":
        return printer.Dummy()
    raise ValueError(f"RECEIPT_PRINTER: unknown printer {spec!r} (usb:, network:, file:)")


def _text(printer: Any, line: str) -> None:
    # python-escpos's own encoder has no GB18030 table: send the bytes ourselves.
    printer._raw(line.encode("gb18030") + b"\n")


def print_ticket(printer: Any, *, centre: str, label: str, when: str, place: str, ahead: str, token: str, footer: str) -> None:
    """One ticket: centre, the big number, time and place, people ahead, the QR, a footer."""
    printer.hw("INIT")
    printer._raw(CHINESE_ON)
    printer.set(align="center")
    _text(printer, centre)
    printer.set(align="center", double_height=True, double_width=True, bold=True)
    _text(printer, label)
    printer.set(align="center", normal_textsize=True, bold=False)
    for line in (when, place, ahead):
        if line:
            _text(printer, line)
    printer._raw(CHINESE_OFF)
    printer.qr(token, size=6, native=True)
    printer._raw(CHINESE_ON)
    _text(printer, footer)
    printer._raw(CHINESE_OFF)
    printer.cut()


def try_print(spec: str, render: Callable[[Any], None]) -> bool:
    """Print if a printer is configured; a failure is logged, never raised."""
    try:
        printer = open_printer(spec)
        if printer is None:
            return False
        render(printer)
        close = getattr(printer, "close", None)
        if close is not None:
            close()
        return True
    except Exception:
        log.exception("ticket printing failed")
        return False
