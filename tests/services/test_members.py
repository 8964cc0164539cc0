import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kiosk.members.models import Member
from kiosk.members.services import (
    CardError,
    MemberError,
    card_token,
    reissue_card,
    resolve_card,
    search_members,
    set_member_active,
    update_member,
)
from kiosk.signing import TokenSigner
from kiosk.staff.models import AuditEntry
from tests.helpers import register

CENTRE = "XH-CY-CY1"
SIGNER = TokenSigner("card-key", purpose="member-card")


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_register_normalises_and_audits_without_personal_data(session):
    member = register(session, name="  张  建华 ", phone="138 1234 5678")
    session.commit()
    assert (member.name, member.phone, member.card_serial) == ("张 建华", "13812345678", 1)
    audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "member.register"))
    assert audit.target == f"member:{member.id}"
    assert "1381234" not in audit.detail + audit.target and "张" not in audit.detail + audit.target


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"phone": "1381234"}, "phone_wrong_length"),
        ({"phone": "abc"}, "phone_not_digits"),
        ({"name": ""}, "name_required"),
        ({"name": "张" * 31}, "name_too_long"),
        ({"name": "张3"}, "name_invalid"),
        ({"community": "区" * 61}, "community_too_long"),
        ({"age_band": "100+"}, "age_band_invalid"),
        ({"consent": False}, "consent_required"),
    ],
)
def test_bad_registrations_are_refused_and_nothing_is_written(session, fields, code):
    with pytest.raises(MemberError) as info:
        register(session, **fields)
    assert info.value.code == code
    session.rollback()
    assert count(session, Member) == 0 and count(session, AuditEntry) == 0


def test_duplicate_phone_is_refused(session):
    register(session)
    session.commit()
    with pytest.raises(MemberError) as info:
        register(session, name="李娜", phone="+86 138-1234-5678")
    assert (info.value.code, info.value.status, info.value.field) == ("duplicate_phone", 409, "phone")
    session.rollback()
    assert count(session, Member) == 1


def test_update_keeps_phone_when_blank_and_refuses_a_taken_one(session):
    first = register(session)
    second = register(session, name="李娜", phone="13900001111")
    session.commit()
    update_member(session, second, name="李娜娜", phone="", community="嘉荷社区", age_band="60-69", actor=None)
    session.commit()
    assert (second.name, second.phone) == ("李娜娜", "13900001111")
    with pytest.raises(MemberError) as info:
        update_member(session, second, name="李娜", phone=first.phone, community="", age_band="60-69", actor=None)
    assert info.value.code == "duplicate_phone"


def test_search_by_name_community_and_phone_fragment(session):
    register(session)
    register(session, name="李娜", phone="13900001111", community="嘉荷社区")
    session.commit()
    assert [m.name for m in search_members(session, "建华")[0]] == ["张建华"]
    assert [m.name for m in search_members(session, "嘉荷")[0]] == ["李娜"]
    assert [m.name for m in search_members(session, "1111")[0]] == ["李娜"]
    assert search_members(session, "")[1] == 2
    assert search_members(session, "%")[1] == 2  # LIKE wildcards are not special


def test_card_round_trip_and_each_refusal_has_its_own_reason(session):
    member = register(session)
    session.commit()
    token = card_token(member, SIGNER, CENTRE)
    assert token.startswith("M1.XH-CY-CY1.") and len(token) < 80
    assert resolve_card(session, token, SIGNER, CENTRE).id == member.id

    def refused(code_token, centre=CENTRE, signer=SIGNER):
        with pytest.raises(CardError) as info:
            resolve_card(session, code_token, signer, centre)
        return info.value.code

    assert refused(token, centre="XH-GD-JH") == "card_wrong_centre"
    assert refused(token.replace(f".{member.id}.", f".{member.id + 1}.")) == "card_tampered"
    assert refused(token, signer=TokenSigner("another-key", purpose="member-card")) == "card_tampered"
    assert refused("M1.nonsense") == "card_invalid"
    assert refused(card_token(Member(id=999, card_serial=1), SIGNER, CENTRE)) == "card_unknown"
    reissue_card(session, member, actor=None)
    session.commit()
    assert refused(token) == "card_revoked"
    new_token = card_token(member, SIGNER, CENTRE)
    assert resolve_card(session, new_token, SIGNER, CENTRE).id == member.id
    set_member_active(session, member, False, actor=None)
    session.commit()
    assert refused(new_token) == "member_inactive"


def test_cards_signed_with_a_rotated_key_still_work_until_it_is_dropped(session):
    member = register(session)
    session.commit()
    old_token = card_token(member, TokenSigner("old-key", purpose="member-card"), CENTRE)
    rotated = TokenSigner("new-key", ["old-key"], purpose="member-card")
    assert resolve_card(session, old_token, rotated, CENTRE).id == member.id
    assert card_token(member, rotated, CENTRE) != old_token
    with pytest.raises(CardError):
        resolve_card(session, old_token, TokenSigner("new-key", purpose="member-card"), CENTRE)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0, max_value=200), replacement=st.characters(min_codepoint=33, max_codepoint=126))
def test_any_one_character_change_to_a_card_is_refused(session, position, replacement):
    member = session.get(Member, 1) or register(session)
    session.commit()
    token = card_token(member, SIGNER, CENTRE)
    position %= len(token)
    if token[position] == replacement:
        return
    mutated = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(CardError):
        resolve_card(session, mutated, SIGNER, CENTRE)
