"""Imports every feature's models, so Alembic autogenerate and create_all see the whole schema.

Walks kiosk.features.FEATURES: a feature's tables are found through its line there.
"""

from __future__ import annotations

import importlib
import importlib.util

from kiosk.features import FEATURES

for _name in FEATURES:
    if importlib.util.find_spec(f"{_name}.models") is not None:
        importlib.import_module(f"{_name}.models")
