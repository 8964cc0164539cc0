"""Scanner recognisers for check-in at the kiosk.

- A member card scanned while a check-in screen is open (or the kiosk is locked to an
  activity) checks the member in; elsewhere the card opens 我的积分 (members.scan).
- A check-in QR (poster or rotating) held to the kiosk scanner opens that activity's screen.
"""

from __future__ import annotations

from kiosk.checkin import settings
from kiosk.checkin.models import CheckinMethod
from kiosk.checkin.services import check_in, current_lock, looks_like_checkin_code, read_checkin_token
from kiosk.db import utcnow
from kiosk.i18n import _l
from kiosk.members.scan import member_signer
from kiosk.members.services import looks_like_card, resolve_card
from kiosk.privacy import mask_name
from kiosk.scan.services import Recogniser, ScanOutcome

ACTIVITY_SESSION_KEY = "checkin_activity"


def selected_activity(session, context) -> int | None:
    chosen = context.visitor.get(ACTIVITY_SESSION_KEY)
    if isinstance(chosen, int):
        return chosen
    lock = current_lock(session, context.config["DEVICE_ID"])
    return lock.activity_id if lock else None


def recognise_card_for_checkin(session, code, context):
    if not looks_like_card(code):
        return None
    activity_id = selected_activity(session, context)
    if activity_id is None:
        return None
    config = context.config
    member = resolve_card(session, code, member_signer(config), config["CENTRE_CODE"])
    result = check_in(session, activity_id, rules=settings.rules(config), method=CheckinMethod.KIOSK_CARD, member=member)
    if result.points:
        message = _l(
            "Checked in: %(name)s, %(title)s. +%(points)d points", name=mask_name(result.member_name), title=result.activity_title, points=result.points
        )
    else:
        message = _l("Checked in: %(name)s, %(title)s.", name=mask_name(result.member_name), title=result.activity_title)
    return ScanOutcome(kind="checkin", message=message)


def recognise_checkin_code(session, code, context):
    if not looks_like_checkin_code(code):
        return None
    config = context.config
    scanned = read_checkin_token(code, settings.code_signer(config), config["CENTRE_CODE"], utcnow(), int(config["ROTATING_QR_SECONDS"]))
    return ScanOutcome(
        kind="checkin-code",
        url_values={"activity_id": scanned.activity_id},
        message=_l("Please scan your member card or enter your mobile number."),
        visitor={ACTIVITY_SESSION_KEY: scanned.activity_id},
    )


# A card on a check-in screen checks in (10) before it opens 我的积分 (members, 0).
CARD_FOR_CHECKIN = Recogniser("checkin-card", recognise_card_for_checkin, priority=10)
CHECKIN_CODE = Recogniser("checkin-code", recognise_checkin_code, priority=5, endpoint="checkin.screen")
