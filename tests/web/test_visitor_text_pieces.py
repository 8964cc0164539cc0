"""The pieces visitor text is printed in (templates/_macros/ui.html): dates that never break
inside, in English too, and names that break only between their words (docs/ux.md)."""

from __future__ import annotations

import re

import pytest


def _render(app, source: str, **values) -> str:
    with app.test_request_context():
        return app.jinja_env.from_string('{% from "_macros/ui.html" import date_text, name_text, publisher_text, with_name %}' + source).render(**values)


def _pieces(markup: str) -> list[str]:
    return [p.replace("\u00a0", " ") for p in re.findall(r'<span class="date-part">(.*?)</span>', markup)]


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("12月2日 周三 09:00", ["12月2日", "周三", "09:00"]),
        ("Wed 2 Dec 09:00–10:00", ["Wed 2 Dec", "09:00–10:00"]),  # was Wed / 2 / Dec: three pieces
        ("Sat 28 Nov, all day · Hall", ["Sat 28 Nov,", "all day ·", "Hall"]),
        ("Today 22:00–02:00 next day (overnight)", ["Today", "22:00–02:00", "next day", "(overnight)"]),
        ("Wed 2 Dec 2027 10:00", ["Wed 2 Dec 2027", "10:00"]),
    ],
)
def test_a_date_breaks_only_between_its_units(app, text, pieces):
    assert _pieces(_render(app, "{{ date_text(t) }}", t=text)) == pieces


def test_a_centre_name_breaks_only_between_its_words(app):
    assert _render(app, "{{ name_text(n) }}", n="翠苑街道翠苑一区党群服务中心") == ('<span class="name-text">翠苑街道<wbr>翠苑一区<wbr>党群服务中心</span>')
    assert "<wbr>注会评估行业<wbr>党群服务中心" in _render(app, "{{ name_text(n) }}", n="西湖区注会评估行业党群服务中心")
    assert _render(app, "{{ name_text(n) }}", n="<b>区") == '<span class="name-text">&lt;b&gt;区<wbr></span>'  # escaped first


def test_a_name_in_a_message_is_kept_whole_and_escaped(app):
    out = _render(app, "{{ with_name(m, n) }}", m="签到成功：张*华，<茶>“品红韵”。", n="<茶>“品红韵”")
    assert out == '签到成功：张*华，<span class="name-text">&lt;茶&gt;“品红韵”</span>。'
    assert _render(app, "{{ with_name(m, n) }}", m="<x>", n="absent") == "&lt;x&gt;"


def test_a_publisher_breaks_before_its_kind_or_after_its_last_dot(app):
    def render(name: str) -> str:
        return _render(app, "{{ publisher_text(n) }}", n=name)

    assert render("人民文学出版社") == '<span class="name-text">人民文学<wbr>出版社</span>'  # not 人民文/学出版社
    # No break around the first · (生活· alone on a line), one after the last.
    assert render("生活·读书·新知三联书店") == '<span class="name-text">生活\u2060·\u2060读书\u2060·<wbr>新知三联书店</span>'
    assert render("<b>中华书局") == '<span class="name-text">&lt;b&gt;中华书局</span>'  # escaped


def test_the_phone_confirmation_keeps_both_names_whole():
    from kiosk.checkin.views import _message_pieces

    pieces = _message_pieces("签到成功：张*华，西红集市之“茶香品红韵”。积分 +5", "张*华", "西红集市之“茶香品红韵”")
    # The full stop stays with the name: no line starts with 。
    assert pieces == ("签到成功：", "张*华，", "", "西红集市之“茶香品红韵”。", "积分 +5")
    assert _message_pieces("Checked in: 136****0002, Tea. +5 points", "136****0002", "Tea")[1:] == ("136****0002,", " ", "Tea. ", "+5 points")
    assert "".join(_message_pieces("签到成功：某某", "张*华", "书法")) == "签到成功：某某"  # nothing lost when a piece is missing
