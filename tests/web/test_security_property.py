"""Non-ASCII, huge and control-character values in every route parameter, form field and
token never give a 5xx (issue 8, Low; docs/security.md). Walks the URL map, so a route added
later is covered too. Before the fixes it found the TypeError of non-ASCII signatures and the
OverflowError of ids above 2^63 (both 500s).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import csrf_token, login

HOSTILE = st.one_of(
    st.text(min_size=1, max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Lo", "So", "Zs"]), min_size=1, max_size=20),
    st.integers(min_value=2**62, max_value=10**30).map(str),
    st.sampled_from(["C1.XH-CY-CY1.1.P.中", "M1.XH-CY-CY1.1.1.中", "a.中", "\x00", "%0d%0a", "0001-01-01T00:00", "9" * 400, "‮", "."]),
)
FIELDS = ("code", "phone", "pass", "activity", "reward_id", "request_key", "lang", "q", "page", "reason", "note", "person", "name", "next")


def fill(rule: str, value: str) -> str:
    return re.sub(r"<(?:\w+:)?\w+>", lambda _m: quote(value, safe="") or "x", rule)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_values_at_every_route_never_give_a_5xx(app, client, make_staff, data):
    if not getattr(client, "_logged_in", False):
        make_staff("admin.a", role="admin")
        login(client, "admin.a", "correct-horse-1")
        client._logged_in = True
        client._token = csrf_token(client, "/staff/")
    rules = sorted((r for r in app.url_map.iter_rules() if r.endpoint not in {"static", "staff.logout"}), key=lambda r: r.rule)
    rule = data.draw(st.sampled_from(rules))
    value = data.draw(HOSTILE)
    path = fill(rule.rule, value)
    form = {name: data.draw(HOSTILE) for name in data.draw(st.sets(st.sampled_from(FIELDS), max_size=4))}
    method = "POST" if "POST" in rule.methods and data.draw(st.booleans()) else ("GET" if "GET" in rule.methods else "POST")
    response = client.get(path, query_string=form) if method == "GET" else client.post(path, data=form | {"csrf_token": client._token})
    assert response.status_code < 500, (method, path, form, response.status_code)
