import pytest

from kiosk.scan import services
from kiosk.scan.services import ScanContext, ScanError, ScanOutcome, recognise

EMPTY = ScanContext({})


def test_unknown_code_is_refused_with_its_own_reason(session):
    with pytest.raises(ScanError) as info:
        recognise(session, "HELLO-WORLD", EMPTY)
    assert info.value.code == "scan_unknown"


@pytest.mark.parametrize("raw, code", [(None, "scan_empty"), ("   ", "scan_empty"), ("x" * 200, "scan_too_long"), ("ab\x00cd", "scan_unknown")])
def test_bad_scans(session, raw, code):
    with pytest.raises(ScanError) as info:
        recognise(session, raw, ScanContext({"MAX_SCAN_LENGTH": 160}))
    assert info.value.code == code


def test_a_registered_recogniser_claims_its_codes(session, monkeypatch):
    monkeypatch.setattr(services, "_RECOGNISERS", {})

    @services.recogniser("test-card")
    def _card(_session, code, _context):
        return ScanOutcome(kind="test-card", redirect_to="/points") if code.startswith("TC1.") else None

    assert recognise(session, " TC1.abc ", EMPTY).kind == "test-card"
    with pytest.raises(ScanError):
        recognise(session, "XX1.abc", EMPTY)

    @services.recogniser("test-first", priority=5)
    def _first(_session, code, context):
        return ScanOutcome(kind="test-first") if code.startswith("TC1.") and context.visitor.get("busy") else None

    assert services.registered_kinds() == ["test-first", "test-card"]
    assert recognise(session, "TC1.abc", ScanContext({}, {"busy": True})).kind == "test-first"
    assert recognise(session, "TC1.abc", EMPTY).kind == "test-card"
