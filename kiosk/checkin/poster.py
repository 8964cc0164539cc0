"""The A4 check-in poster as PDF (reportlab). Chinese text uses the standard Adobe-GB1 CID
font STSong-Light, which every PDF viewer maps to a local Chinese font, so nothing large is
embedded; the QR is drawn from the same PNG the page shows."""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from kiosk.qr import qr_png

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def poster_pdf(*, centre_name: str, title: str, when: str, place: str, url: str, call_to_action: str, footer: str) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    width, height = A4
    pdf.setTitle(title)
    pdf.setFont(FONT, 16)
    pdf.drawCentredString(width / 2, height - 25 * mm, centre_name)
    pdf.setFont(FONT, 34)
    pdf.drawCentredString(width / 2, height - 48 * mm, title)
    pdf.setFont(FONT, 16)
    pdf.drawCentredString(width / 2, height - 62 * mm, when)
    if place:
        pdf.drawCentredString(width / 2, height - 72 * mm, place)
    size = 120 * mm
    pdf.drawImage(ImageReader(io.BytesIO(qr_png(url, box_size=12))), (width - size) / 2, height - 82 * mm - size, size, size)
    pdf.setFont(FONT, 24)
    pdf.drawCentredString(width / 2, height - 82 * mm - size - 16 * mm, call_to_action)
    pdf.setFont(FONT, 11)
    pdf.drawCentredString(width / 2, 18 * mm, footer)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
