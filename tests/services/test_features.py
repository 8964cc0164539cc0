"""Every feature plugs in through kiosk.features, and declares what it writes to the outbox."""

from __future__ import annotations

import re
from pathlib import Path

import kiosk
from kiosk.features import FEATURES, registry

EVENT_CALL = re.compile(r"record_event\(\s*\w+,\s*[\"']([\w.]+)[\"']")


def test_every_outbox_event_type_written_in_the_code_is_declared_by_a_feature(app):
    """The sync feature relies on the declared types: a new event type must be registered."""
    written = {match for path in Path(kiosk.__file__).parent.rglob("*.py") for match in EVENT_CALL.findall(path.read_text(encoding="utf-8"))}
    assert written, "found no record_event calls: the pattern is out of date"
    assert written <= registry(app).event_types, written - registry(app).event_types


def test_every_feature_package_is_in_the_list_once_and_registers_its_blueprints(app):
    assert len(set(FEATURES)) == len(FEATURES)
    names = [f.name for f in registry(app).features]
    assert set(app.blueprints) >= {bp.name for f in registry(app).features for bp in f.blueprints}
    assert "checkin" in names and "members" in names and "points" in names
