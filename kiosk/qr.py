"""QR images (qrcode): PNG for printing and downloads, SVG for crisp on-screen and print use."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M


def _code(data: str) -> qrcode.QRCode:
    # Level M survives a scuffed card or a glare spot; a 4-module quiet zone is what scanners need.
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    code.add_data(data)
    code.make(fit=True)
    return code


def qr_png(data: str, box_size: int = 10) -> bytes:
    code = _code(data)
    code.box_size = box_size
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(data: str) -> bytes:
    image = _code(data).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="utf-8")


# ---- labelled downloads: the QR with what it is for, as the PDF poster has ----

# Debian's fonts-noto-cjk; the first one found is used. Without any, Pillow's own font draws
# the Latin text and the QR stays exact (the code, not the caption, is what must work).
CJK_FONT_CANDIDATES = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # face 2: Simplified Chinese
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
)
SVG_FONT_FAMILY = "'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif"


def _font(size: int):
    from PIL import ImageFont

    for path, index in CJK_FONT_CANDIDATES:
        try:
            return ImageFont.truetype(path, size, index=index)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _fit(draw, text: str, size: int, width: int):
    """The font at ``size``, or smaller until ``text`` fits ``width`` (a long activity title)."""
    font = _font(size)
    while size > 12 and draw.textlength(text, font=font) > width:
        size -= 2
        font = _font(size)
    return font


def labelled_png(data: str, *, heading: str, lines: tuple[str, ...] = (), footer: str = "", box_size: int = 10) -> bytes:
    """The QR code with a heading (the activity or member) above and the centre below."""
    from PIL import Image, ImageDraw

    qr = Image.open(io.BytesIO(qr_png(data, box_size=box_size))).convert("RGB")
    width = max(qr.width, 600)
    margin = 24
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows = [(heading, _fit(probe, heading, 40, width - 2 * margin))] + [(line, _fit(probe, line, 26, width - 2 * margin)) for line in lines if line]
    heights = [font.getbbox(text or " ")[3] + 14 for text, font in rows]
    foot_font = _fit(probe, footer, 24, width - 2 * margin) if footer else None
    foot_height = foot_font.getbbox(footer)[3] + 28 if foot_font else 0
    image = Image.new("RGB", (width, margin + sum(heights) + qr.height + foot_height), "white")
    draw = ImageDraw.Draw(image)
    y = margin
    for (text, font), height in zip(rows, heights, strict=True):
        draw.text((width / 2, y), text, font=font, fill="black", anchor="mt")
        y += height
    image.paste(qr, ((width - qr.width) // 2, y))
    if foot_font:
        draw.text((width / 2, y + qr.height + 8), footer, font=foot_font, fill="black", anchor="mt")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def labelled_svg(data: str, *, heading: str, lines: tuple[str, ...] = (), footer: str = "") -> bytes:
    """The same layout as labelled_png in SVG: the QR as one path of unit squares, text as text."""
    from xml.sax.saxutils import escape

    matrix = _code(data).get_matrix()  # includes the 4-module quiet zone
    modules = len(matrix)
    scale = 10
    qr_size = modules * scale
    width = max(qr_size, 600)
    texts = [(heading, 40)] + [(line, 26) for line in lines if line]
    y = 24
    parts = []
    for text, size in texts:
        y += size
        parts.append(f'<text x="{width / 2:g}" y="{y}" font-size="{size}" text-anchor="middle">{escape(text)}</text>')
        y += 14
    path = "".join(f"M{x},{row}h1v1h-1z" for row, cells in enumerate(matrix) for x, dark in enumerate(cells) if dark)
    left = (width - qr_size) / 2
    parts.append(f'<g transform="translate({left:g},{y}) scale({scale})"><path d="{path}" fill="#000"/></g>')
    y += qr_size
    if footer:
        y += 8 + 24
        parts.append(f'<text x="{width / 2:g}" y="{y}" font-size="24" text-anchor="middle">{escape(footer)}</text>')
        y += 20
    height = y + 8
    svg = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height}" '
        f'viewBox="0 0 {width:g} {height}" font-family="{escape(SVG_FONT_FAMILY, {chr(34): "&quot;"})}">'
        f'<rect width="100%" height="100%" fill="#fff"/>{"".join(parts)}</svg>'
    )
    return svg.encode("utf-8")
