"""Audit actions and record references (``activity:3``, ``redemption:2``) in words for staff pages.

The codes stay in the database (and in the audit filter); pages show what they mean and link
to the record. No flask import: a description names an endpoint, the template builds the link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.i18n import _l

ACTION_LABELS: dict[str, Any] = {
    "activity.create": _l("New activity"),
    "activity.update": _l("Activity changed"),
    "activity.cancelled": _l("Activity cancelled"),
    "activity.active": _l("Activity reopened"),
    "checkin.staff": _l("Check-in by staff"),
    "checkin.undo": _l("Check-in undone"),
    "kiosk.lock": _l("Kiosk locked to an activity"),
    "kiosk.unlock": _l("Kiosk unlocked"),
    "member.register": _l("Member registered"),
    "member.update": _l("Member details changed"),
    "member.activate": _l("Membership reactivated"),
    "member.deactivate": _l("Membership deactivated"),
    "member.card_reissue": _l("Member card re-issued"),
    "member.export": _l("Member list exported"),
    "points.correct": _l("Points corrected"),
    "points.redeem": _l("Points redeemed"),
    "redemption.hand_over": _l("Reward handed over"),
    "redemption.cancel": _l("Redemption cancelled"),
    "reward.create": _l("New reward"),
    "reward.update": _l("Reward changed"),
    "staff.create": _l("Staff account created"),
    "staff.activate": _l("Staff account reactivated"),
    "staff.deactivate": _l("Staff account deactivated"),
    "staff.password": _l("Own password changed"),
    "staff.password_reset": _l("Password reset by an administrator"),
    "staff.login": _l("Logged in"),
    "staff.login_failed": _l("Login refused"),
    "staff.logout": _l("Logged out"),
}

ACTOR_LABELS: dict[str, Any] = {
    "cli": _l("Command line"),
    "kiosk": _l("Kiosk"),
    "web-login": _l("Login page"),
}


@dataclass(frozen=True)
class Described:
    """A reference in words, and where it leads (an endpoint and its arguments) if anywhere."""

    text: str
    endpoint: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


def describe_references(session: Session, references: list[str]) -> dict[str, Described]:
    """Each ``kind:id`` reference in words; unknown forms (a username) are kept as they are."""
    from kiosk.checkin.models import Activity, CheckIn
    from kiosk.members.models import Member
    from kiosk.points.models import Redemption, Reward

    wanted: dict[str, set[int]] = {}
    for reference in references:
        kind, _, raw_id = (reference or "").partition(":")
        if raw_id.isdigit() and len(raw_id) < 18:
            wanted.setdefault(kind, set()).add(int(raw_id))

    def rows(model, ids):
        return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}

    checkins = rows(CheckIn, wanted.get("checkin", set()))
    redemptions = rows(Redemption, wanted.get("redemption", set()))
    activities = rows(Activity, wanted.get("activity", set()) | {c.activity_id for c in checkins.values()})
    members = rows(Member, wanted.get("member", set()))
    rewards = rows(Reward, wanted.get("reward", set()) | {r.reward_id for r in redemptions.values()})

    described: dict[str, Described] = {}
    for reference in references:
        kind, _, raw_id = (reference or "").partition(":")
        number = int(raw_id) if raw_id.isdigit() and len(raw_id) < 18 else None
        text, endpoint, args = reference or "", None, {}
        if kind == "activity" and number in activities:
            text = str(_l("Activity “%(title)s”", title=activities[number].title))
            endpoint, args = "activities.detail", {"activity_id": number}
        elif kind == "member" and number in members:
            text = str(_l("Member “%(name)s”", name=members[number].name))
            endpoint, args = "members.detail", {"member_id": number}
        elif kind == "checkin" and number in checkins:
            checkin = checkins[number]
            title = activities[checkin.activity_id].title if checkin.activity_id in activities else "?"
            text = str(_l("Check-in at “%(title)s”", title=title))
            endpoint, args = "activities.detail", {"activity_id": checkin.activity_id}
        elif kind == "redemption" and number in redemptions:
            redemption = redemptions[number]
            name = rewards[redemption.reward_id].name if redemption.reward_id in rewards else "?"
            text = str(_l("Redemption of “%(reward)s” (pick-up code %(code)s)", reward=name, code=redemption.pickup_code))
            endpoint, args = "rewards.redemptions", {"code": redemption.pickup_code}
        elif kind == "reward" and number in rewards:
            text = str(_l("Reward “%(name)s”", name=rewards[number].name))
            endpoint, args = "rewards.edit_reward", {"reward_id": number}
        described[reference] = Described(text, endpoint, args)
    return described
