from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import NumberRange, Optional

from kiosk.i18n import _l


class BookForm(FlaskForm):
    title = StringField(_l("Title"))
    subtitle = StringField(_l("Subtitle"))
    authors = StringField(_l("Authors"))
    publisher = StringField(_l("Publisher"))
    year = StringField(_l("Year"), render_kw={"inputmode": "numeric"})
    isbn = StringField(_l("ISBN"))
    call_number = StringField(_l("Call number (中图法)"))
    subjects = StringField(_l("Subjects"))
    summary = TextAreaField(_l("Summary"))


class CopyForm(FlaskForm):
    barcode = StringField(_l("Barcode"), render_kw={"autocomplete": "off"})
    location = StringField(_l("Shelf (e.g. A-03-2)"))
    note = StringField(_l("Note"))


class UploadForm(FlaskForm):
    file = FileField(_l("Catalogue file (CSV, XLSX, MARC)"), validators=[FileRequired()])


class LendForm(FlaskForm):
    member = StringField(_l("Member card or member number"), render_kw={"autocomplete": "off"})
    barcode = StringField(_l("Copy barcode"), render_kw={"autocomplete": "off"})
    days = IntegerField(_l("Days"), default=30, validators=[Optional(), NumberRange(min=1, max=120)])


class ReturnForm(FlaskForm):
    barcode = StringField(_l("Copy barcode"), render_kw={"autocomplete": "off"})


class ShelfForm(FlaskForm):
    name = StringField(_l("Name"))
    description = StringField(_l("Description"))
    books = TextAreaField(_l("Books: one ISBN or book number a line"))


class CoverForm(FlaskForm):
    cover = FileField(_l("Cover photo (JPEG or PNG)"), validators=[FileRequired()])


class ShelfMapForm(FlaskForm):
    picture = FileField(_l("Shelf map of the reading room (JPEG or PNG, up to 2 MB)"), validators=[FileRequired()])
