"""Check-in rules and signers built from the app config (views and recognisers share these)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from kiosk.checkin.services import PASS_PURPOSE, TOKEN_PURPOSE, CheckinRules
from kiosk.signing import TokenSigner, signer_from_config


def rules(config: Mapping[str, Any]) -> CheckinRules:
    return CheckinRules(
        zone=ZoneInfo(config["TIMEZONE"]),
        device_id=config["DEVICE_ID"],
        district_key=config["DISTRICT_KEY"] or config["SECRET_KEY"],
        repeat_minutes=int(config["REPEAT_CHECKIN_MINUTES"]),
    )


def code_signer(config: Mapping[str, Any]) -> TokenSigner:
    return signer_from_config(config, TOKEN_PURPOSE)


def pass_signer(config: Mapping[str, Any]) -> TokenSigner:
    return signer_from_config(config, PASS_PURPOSE)


def qr_address_warning(public_base_url: str, host_url: str) -> str | None:
    """Why phones may fail to open the address printed into check-in QR codes, or None.

    "loopback": the address is this PC only (127.0.0.1, localhost, ::1, 0.0.0.0): no phone can
    reach it. "unset": PUBLIC_BASE_URL is empty, so the codes carry whatever address the staff
    page was opened with, which may not be the one the centre's Wi-Fi reaches.
    """
    base = public_base_url or host_url
    host = (urlsplit(base).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
        local = address.is_loopback or address.is_unspecified
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost") or not host
    if local:
        return "loopback"
    return None if public_base_url else "unset"
