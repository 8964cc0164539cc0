"""Labelled QR downloads: the code must still scan, with the caption around it."""

import io
import re

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from kiosk import qr

URL = "http://kiosk.local/c/P1.XH-CY.17.abcDEF_123"


def decode(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image)]


def svg_to_image(svg: bytes) -> Image.Image:
    """Rasterise what labelled_svg draws of the QR (its unit-square path under translate+scale)."""
    text = svg.decode("utf-8")
    width, height = (int(float(v)) for v in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', text).groups())
    left, top, scale = (float(v) for v in re.search(r"translate\(([\d.]+),([\d.]+)\) scale\(([\d.]+)\)", text).groups())
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for x, y in re.findall(r"M(\d+),(\d+)h1v1h-1z", text):
        x0, y0 = left + int(x) * scale, top + int(y) * scale
        draw.rectangle([x0, y0, x0 + scale - 1, y0 + scale - 1], fill=0)
    return image


def test_the_labelled_png_scans_and_carries_its_caption_above_and_below():
    png = qr.labelled_png(URL, heading="社区书法课", lines=("2026-11-28 14:00–16:00", "二楼活动室"), footer="翠苑社区服务中心")
    image = Image.open(io.BytesIO(png)).convert("L")
    assert decode(image) == [URL]
    bare = Image.open(io.BytesIO(qr.qr_png(URL))).convert("L")
    assert image.height > bare.height + 100  # room for the heading, two lines and the centre
    # Ink above the code (the heading) and below it (the centre): not a bare QR.
    assert image.crop((0, 0, image.width, 60)).getextrema()[0] < 128
    assert image.crop((0, image.height - 50, image.width, image.height)).getextrema()[0] < 128


def test_the_labelled_svg_scans_and_escapes_its_text():
    svg = qr.labelled_svg(URL, heading="书法课 <b>&", lines=("二楼",), footer="翠苑社区服务中心")
    text = svg.decode("utf-8")
    assert "书法课 &lt;b&gt;&amp;" in text and "<b>" not in text and "翠苑社区服务中心" in text
    assert decode(svg_to_image(svg)) == [URL]


def test_without_a_cjk_font_the_png_still_renders_and_scans(monkeypatch):
    monkeypatch.setattr(qr, "CJK_FONT_CANDIDATES", (("/nonexistent/font.ttc", 0),))
    png = qr.labelled_png(URL, heading="Calligraphy 书法", footer="Centre")
    assert decode(Image.open(io.BytesIO(png))) == [URL]


@pytest.mark.parametrize("title", ["课" * 60, "A very long activity title that runs across the whole width of the poster"])
def test_a_long_title_is_shrunk_to_fit_and_the_code_still_scans(title):
    png = qr.labelled_png(URL, heading=title, footer="中心")
    assert decode(Image.open(io.BytesIO(png))) == [URL]
