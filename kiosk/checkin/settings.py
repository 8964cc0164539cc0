"""Check-in rules and signers built from the app config (views and recognisers share these)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
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
