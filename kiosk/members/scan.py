"""The member-card recogniser for the kiosk scanner (/scan)."""

from __future__ import annotations

from kiosk.i18n import _l
from kiosk.members.services import looks_like_card, resolve_card
from kiosk.privacy import mask_name
from kiosk.scan.services import Recogniser, ScanOutcome
from kiosk.signing import signer_from_config

MEMBER_SESSION_KEY = "member"


def member_signer(config):
    from kiosk.members.services import CARD_PURPOSE

    return signer_from_config(config, CARD_PURPOSE)


def recognise_member_card(session, code, context):
    if not looks_like_card(code):
        return None
    member = resolve_card(session, code, member_signer(context.config), context.config["CENTRE_CODE"])
    return ScanOutcome(
        kind="member-card",
        url_values={},
        message=_l("Hello, %(name)s", name=mask_name(member.name)),
        visitor={MEMBER_SESSION_KEY: {"id": member.id, "serial": member.card_serial}},
    )


MEMBER_CARD = Recogniser("member-card", recognise_member_card, endpoint="points.index")
