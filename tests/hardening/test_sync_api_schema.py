"""schemathesis against docs/openapi-sync.yaml (issue 14): every operation of the sync API,
with requests generated from the schema (valid ones and ones that break it), signed as an
enrolled kiosk signs them (kiosk.sync.protocol: HMAC over method, path and query, timestamp,
nonce and the sha256 of the bytes on the wire; a push's body gzip as the kiosk sends it), sent
to the hub app on PostgreSQL (the `make test` cluster, or one tests/sync/conftest.py starts).

Every answer: no 5xx; status code, content type and body as the schema says. Every refusal
(4xx other than 409, which stores) leaves the hub's tables as they were. One request in five
goes unsigned or wrongly signed, so the refusals are fuzzed too.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from sqlalchemy import text

from kiosk.config import PROJECT_ROOT
from kiosk.extensions import db
from kiosk.hub import services as hub_services
from kiosk.sync import protocol
from tests.helpers import make_app
from tests.sync.conftest import hub_config

CI = os.environ.get("CI") == "true"
EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "60"))
SCHEMA = schemathesis.openapi.from_path(PROJECT_ROOT / "docs" / "openapi-sync.yaml")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
HUB_TABLES = (
    "hub_event",
    "hub_nonce",
    "hub_conflict",
    "hub_key",
    "hub_centre",
    "hub_daily",
    "hub_person_day",
    "hub_enrolment",
    "hub_publication",
    "hub_rollup_queue",
)


class Hub:
    def __init__(self, app, key_id: str, secret: str):
        self.app = app
        self.key_id = key_id
        self.secret = secret
        self.sent = itertools.count()

    def fingerprint(self) -> tuple:
        with self.app.app_context():
            try:
                row = db.session.execute(
                    text(
                        "SELECT "
                        + ", ".join(f"(SELECT count(*) FROM {t})" for t in HUB_TABLES)
                        + ", (SELECT string_agg(key_id || status || coalesce(revoked_at::text, ''), ',' ORDER BY id) FROM hub_key)"
                        + ", (SELECT string_agg(centre_id || ':' || acked_seq, ',' ORDER BY centre_id) FROM hub_centre)"
                    )
                ).one()
                return tuple(row)
            finally:
                db.session.remove()


@pytest.fixture(scope="module")
def hub(hub_database: str, tmp_path_factory) -> Hub:
    # No background roll-up (HUB_ROLLUP_DELAY < 0): it would apply an earlier accepted push
    # between a refused request's before and after fingerprints (hub_daily up, the queue down)
    # and read as the refused request writing. Roll-ups are tested in tests/sync/test_hub_rollup.py.
    app = make_app(tmp_path_factory.mktemp("hub-schema"), **hub_config(hub_database), HUB_ROLLUP_DELAY=-1)
    with app.app_context():
        code = hub_services.create_enrolment(db.session, "XH-CY-CY1", created_by="test")
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    answer = client.post(protocol.API_PREFIX + "/enrol", json={"code": code}, headers={protocol.HEADER_PROTOCOL: "1"})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    enrolled = answer.get_json()
    return Hub(app, enrolled["key_id"], enrolled["secret"])


def _send(hub: Hub, case):
    """The case as an enrolled kiosk would send it (or, one time in five, as a stranger would)."""
    path = protocol.API_PREFIX + case.formatted_path
    query = {k: v for k, v in (case.query or {}).items() if v is not None}
    full = path + ("?" + urlencode(query, doseq=True) if query else "")
    body = b""
    if isinstance(case.body, bytes):
        body = case.body
    elif case.body is not None and not isinstance(case.body, schemathesis.core.NotSet):
        body = json.dumps(case.body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    headers = {k: str(v) for k, v in (case.headers or {}).items()}
    if case.path == "/events":
        body = gzip.compress(body)
    variant = next(hub.sent) % 5
    if variant != 4:  # signed as the kiosk signs
        headers |= protocol.signed_headers(hub.key_id, hub.secret, case.method, full, body, now=time.time(), app_version="schemathesis")
        headers[protocol.HEADER_PROTOCOL] = headers.get(protocol.HEADER_PROTOCOL, "1") if variant == 3 else "1"
    elif variant == 4 and protocol.HEADER_SIGNATURE in headers:
        headers[protocol.HEADER_KEY] = hub.key_id
    headers = {k: v.encode("utf-8", "replace").decode("latin-1") for k, v in headers.items() if "\n" not in v and "\r" not in v}
    client = hub.app.test_client()
    return client.open(full, method=case.method, data=body, headers=headers | {"Content-Type": "application/json"})


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=CI,
    database=None if CI else settings.default.database,
    suppress_health_check=list(HealthCheck),
)
def test_the_sync_api_answers_as_its_schema_says_and_never_5xx(case, hub: Hub):
    before = hub.fingerprint()
    response = _send(hub, case)
    case.validate_response(response, checks=CHECKS)
    if 400 <= response.status_code < 500 and response.status_code != 409:
        assert hub.fingerprint() == before, f"refused with {response.status_code} {response.get_data(as_text=True)[:200]} but the hub changed"


def test_the_schema_file_is_the_one_the_docs_name():
    assert Path(SCHEMA.location.removeprefix("file://")).name == "openapi-sync.yaml"
    assert {op.path for op in (result.ok() for result in SCHEMA.get_all_operations())} == {"/hub-key", "/enrol", "/hello", "/events", "/keys/roll", "/pull"}


HEADER_VALUES = st.one_of(
    st.sampled_from(["²", "١٢", "9" * 400, "-1", "0", " 1", "1 ", "", "１", str(2**64), "null", "x" * 100]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80),
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=CI, database=None if CI else settings.default.database, suppress_health_check=list(HealthCheck))
@given(
    operation=st.sampled_from([("POST", "/hello"), ("POST", "/keys/roll"), ("GET", "/pull"), ("POST", "/events"), ("POST", "/enrol")]),
    header=st.sampled_from(
        [protocol.HEADER_PROTOCOL, protocol.HEADER_TIMESTAMP, protocol.HEADER_NONCE, protocol.HEADER_KEY, protocol.HEADER_SIGNATURE, "cursor"]
    ),
    value=HEADER_VALUES,
    sign_after=st.booleans(),
)
def test_hostile_sync_headers_and_cursors_are_refused_not_500(hub: Hub, operation, header, value, sign_after):
    """The headers schemathesis leaves alone (it signs nothing): each X-Sync-* header and the
    pull cursor with non-ASCII digits (``"²".isdigit()`` is true, ``int("²")`` raises), huge
    numbers and junk, signed afterwards or not."""
    method, path = operation
    full = protocol.API_PREFIX + path + (f"?cursor={quote(value)}" if header == "cursor" and path == "/pull" else "")
    body = gzip.compress(b'{"events": []}') if path == "/events" else b"{}"
    headers = protocol.signed_headers(hub.key_id, hub.secret, method, full, body, now=time.time(), app_version="fuzz")
    if header != "cursor":
        headers[header] = value
        if sign_after and header in (protocol.HEADER_TIMESTAMP, protocol.HEADER_NONCE):
            headers[protocol.HEADER_SIGNATURE] = protocol.sign(
                hub.secret, method, full, headers[protocol.HEADER_TIMESTAMP], headers[protocol.HEADER_NONCE], body
            )
    before = hub.fingerprint()
    extra = {"Content-Encoding": "gzip"} if path == "/events" else {}
    response = hub.app.test_client().open(full, method=method, data=body, headers=headers | extra | {"Content-Type": "application/json"})
    assert response.status_code < 500, (method, full, header, value, response.get_data(as_text=True)[:300])
    assert response.is_json and response.get_json()["error"] if response.status_code >= 400 else True
    if 400 <= response.status_code < 500:
        assert hub.fingerprint() == before
