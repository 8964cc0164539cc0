"""A person's rights over their data (PIPL): export everything held about them, erase them,
and the retention period after which old records lose their link to a person.

Plain services in ``services.py`` (no Flask request), the `kiosk privacy …` commands in
``cli.py``. The masking helpers for screens and logs stay in ``kiosk.privacy``.
"""
