"""Per-request hooks trimmed for speed (kiosk.extensions.trim_request_hooks) still do their job
where it is needed."""

from __future__ import annotations

from kiosk.extensions import limiter
from tests.helpers import make_app


def test_an_application_wide_limit_would_still_be_enforced(instance_path):
    """The limiter's before-request check is skipped only while no app-wide limit exists
    (fails if the skip ignores them: tried with the condition removed)."""
    try:
        app = make_app(instance_path, RATELIMIT_APPLICATION="2 per minute")
        client = app.test_client()
        assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 429]
    finally:
        # The limiter is one object for every app in the process: take the limit off again.
        limiter.limit_manager._application_limits = []


def test_pages_without_limits_are_not_limited(client):
    assert {client.get("/healthz").status_code for _ in range(40)} == {200}
