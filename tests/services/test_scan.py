import pytest

from kiosk.features import Feature, FeatureRegistry, registry
from kiosk.scan.services import Recogniser, ScanContext, ScanError, ScanOutcome, recognise

EMPTY = ScanContext({})


def test_unknown_code_is_refused_with_its_own_reason(session, app):
    with pytest.raises(ScanError) as info:
        recognise(session, "HELLO-WORLD", EMPTY, registry(app).recognisers)
    assert info.value.code == "scan_unknown"


@pytest.mark.parametrize("raw, code", [(None, "scan_empty"), ("   ", "scan_empty"), ("x" * 200, "scan_too_long"), ("ab\x00cd", "scan_unknown")])
def test_bad_scans(session, raw, code):
    with pytest.raises(ScanError) as info:
        recognise(session, raw, ScanContext({"MAX_SCAN_LENGTH": 160}), [])
    assert info.value.code == code


def test_a_registered_recogniser_claims_its_codes(session):
    def _card(_session, code, _context):
        return ScanOutcome(kind="test-card", url_values={}) if code.startswith("TC1.") else None

    only_card = FeatureRegistry([Feature("test-a", recognisers=(Recogniser("test-card", _card, endpoint="points.index"),))])
    recogniser, outcome = recognise(session, " TC1.abc ", EMPTY, only_card.recognisers)
    assert outcome.kind == "test-card" and recogniser.endpoint == "points.index"
    with pytest.raises(ScanError):
        recognise(session, "XX1.abc", EMPTY, only_card.recognisers)

    def _first(_session, code, context):
        return ScanOutcome(kind="test-first") if code.startswith("TC1.") and context.visitor.get("busy") else None

    both = FeatureRegistry(
        [Feature("test-a", recognisers=(Recogniser("test-card", _card),)), Feature("test-b", recognisers=(Recogniser("test-first", _first, priority=5),))]
    )
    assert [r.kind for r in both.recognisers] == ["test-first", "test-card"]
    assert recognise(session, "TC1.abc", ScanContext({}, {"busy": True}), both.recognisers)[1].kind == "test-first"
    assert recognise(session, "TC1.abc", EMPTY, both.recognisers)[1].kind == "test-card"


def test_the_registry_lives_on_each_app_and_features_plug_in_at_one_place(app, tmp_path):
    """Two apps in one process never share recognisers; the kiosk's own are in priority order."""
    from tests.helpers import make_app

    mine = registry(app)
    assert [r.kind for r in mine.recognisers] == ["booking-card", "checkin-card", "checkin-code", "booking-ticket", "member-card", "book"]
    other = make_app(tmp_path)
    assert registry(other) is not mine
    assert {"checkin.created", "checkin.undone"} <= mine.event_types
    assert [t.endpoint for t in mine.tiles] == ["checkin.index", "booking.index", "catalogue.index", "points.index"]
    with pytest.raises(ValueError, match="twice"):
        FeatureRegistry([Feature("a"), Feature("a")])
