"""kiosk.web.csrf_token() (issue 9, part 5): Flask-WTF's generate_csrf() without its zlib
attempt. The token is the one Flask-WTF itself would sign (same bytes in the same second),
Flask-WTF validates it, and it is the request's one token (forms and pages share it)."""

from __future__ import annotations

import time

import pytest
from flask import g, session
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from kiosk.web import csrf_token


def test_the_token_is_flask_wtfs_own(app, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_764_400_000.0)  # both sign in the same second
    with app.test_request_context("/"):
        ours = csrf_token()
        assert csrf_token() == ours == g.csrf_token  # one per request, where Flask-WTF keeps it
        validate_csrf(ours)
        del g.csrf_token
        assert generate_csrf() == ours  # byte for byte what Flask-WTF signs for this session
    with app.test_request_context("/"):
        session["csrf_token"] = "0" * 40
        with pytest.raises(ValidationError):
            validate_csrf(ours)  # another session's token is refused, as before


def test_a_long_payload_is_still_compressed_as_itsdangerous_does(app):
    from itsdangerous import URLSafeTimedSerializer

    from kiosk.web import _ShortPayloadSerializer

    ours, theirs = _ShortPayloadSerializer("secret", salt="s"), URLSafeTimedSerializer("secret", salt="s")
    long = "a" * 500
    assert ours.dump_payload(long) == theirs.dump_payload(long) and ours.dump_payload(long).startswith(b".")
    assert ours.loads(ours.dumps(long)) == long
