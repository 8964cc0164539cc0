"""Reading-hall pages: the kiosk's search, browse and book pages, and the staff pages
(books and copies, import, loans at the desk, curated shelves, export)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, send_from_directory, url_for
from flask_babel import gettext as _
from flask_login import current_user

from kiosk.catalogue import importing, search, services
from kiosk.catalogue.forms import BookForm, CopyForm, CoverForm, LendForm, ReturnForm, ShelfForm, ShelfMapForm, UploadForm
from kiosk.catalogue.models import Book, CopyStatus
from kiosk.catalogue.services import CLC_CLASSES, CatalogueError
from kiosk.devices.access import kiosk_blueprint
from kiosk.extensions import db
from kiosk.members import services as members
from kiosk.members.models import Member
from kiosk.members.scan import member_signer
from kiosk.staff.access import client_address, staff_blueprint
from kiosk.staff.forms import ConfirmForm
from kiosk.web import csv_download, local_now, natural_date, render, show_error, submit_form, xlsx_download

bp = kiosk_blueprint("catalogue", __name__)
staff_bp = staff_blueprint("catalogue_staff", __name__, "/staff/catalogue")

# Common first characters of titles, for visitors who cannot type pinyin.
FIRST_CHARACTERS = "红中三西人小大长天春家水山老儿我国新"
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def setup(app) -> None:
    from kiosk.catalogue.cli import catalogue_cli

    app.cli.add_command(catalogue_cli)


def _map_folder() -> Path:
    return Path(current_app.instance_path) / "catalogue"


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def _page() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 6 else 1


def _hits(ids: list[int]) -> list[search.Hit]:
    return search._load_hits(db.session, ids)


# ---- kiosk ----


@bp.get("/catalogue")
def index():
    query = request.args.get("q", "")[:60]
    result = search.search(db.session, query, _page()) if query else None
    return render(
        "catalogue/index.html",
        query=query,
        result=result,
        classes=CLC_CLASSES,
        counts=services.clc_counts(db.session),
        shelves=services.shelves(db.session),
        first_characters=FIRST_CHARACTERS,
        keyboard_rows=KEYBOARD_ROWS,
    )


@bp.get("/catalogue/search")
def results():
    query = request.args.get("q", "")[:60]
    result = search.search(db.session, query, _page())
    return render("catalogue/results_page.html", "catalogue/_results.html", query=query, result=result)


@bp.get("/catalogue/class/<letter>")
def by_class(letter: str):
    letter = letter.upper()
    if letter not in CLC_CLASSES:
        abort(404)
    page = _page()
    ids, total = services.book_ids_in_class(db.session, letter, page, search.PAGE_SIZE)
    pages = max(1, -(-total // search.PAGE_SIZE))
    heading = f"{letter} {CLC_CLASSES[letter]}"
    return render(
        "catalogue/list.html", heading=heading, hits=_hits(ids), page=page, pages=pages, total=total, endpoint="catalogue.by_class", args={"letter": letter}
    )


@bp.get("/catalogue/new")
def new_arrivals():
    ids = services.new_arrival_ids(db.session, 24)
    return render("catalogue/list.html", heading=_("New arrivals"), hits=_hits(ids), page=1, pages=1, total=len(ids), endpoint=None, args={})


@bp.get("/catalogue/shelf/<int:shelf_id>")
def shelf(shelf_id: int):
    try:
        found = services.get_shelf(db.session, shelf_id)
    except CatalogueError:
        abort(404)
    ids = services.shelf_book_ids(db.session, found.id)
    return render(
        "catalogue/list.html", heading=found.name, subheading=found.description, hits=_hits(ids), page=1, pages=1, total=len(ids), endpoint=None, args={}
    )


@bp.get("/catalogue/book/<int:book_id>")
def book(book_id: int):
    found = db.session.get(Book, book_id) or abort(404)
    copies = services.book_copies(db.session, found.id)
    # A visitor is told when a copy is due back; a date already past tells them nothing (and
    # only that someone is late), so an overdue copy is simply 已借出.
    today = local_now().date()
    due = {copy_id: day for copy_id, day in services.due_dates(db.session, [c.id for c in copies]).items() if day >= today}
    locations = sorted({c.location for c in copies if c.location})
    return render(
        "catalogue/book.html",
        book=found,
        copies=copies,
        due=due,
        on_shelf=sum(1 for c in copies if c.status == CopyStatus.ON_SHELF),
        locations=locations,
        class_name=CLC_CLASSES.get(found.clc_class, ""),
        shelf_map=shelf_map(locations),
        shelf_map_photo=services.shelf_map_name(_map_folder()),
        back=_back_to_list(),
    )


def _back_to_list() -> str:
    """Where the book page's 返回检索 goes: the list the visitor came from (``?back=``, with its
    query and page, set by templates/catalogue/_hit.html), if it is a reading-hall page; else
    the search page. 60 Chinese characters of query are ~540 characters of URL."""
    back = request.args.get("back", "")
    if len(back) <= 1000 and back.startswith("/catalogue") and "\\" not in back:
        return back
    return url_for("catalogue.index")


@bp.get("/catalogue/my-loans")
def my_loans():
    """我的借阅: the books a member has out, once their card is scanned (never by phone number)."""
    from kiosk.points.views import identified_member

    member = identified_member()
    loans = services.open_loans(db.session, local_now().date(), member_id=member.id) if member is not None else []
    return render("catalogue/my_loans.html", member=member, loans=loans, today=local_now().date())


@bp.get("/catalogue/shelf-map/<name>")
def shelf_map_picture(name: str):
    if name != services.shelf_map_name(_map_folder()):
        abort(404)
    return send_from_directory(_map_folder(), name, max_age=365 * 24 * 3600)


@bp.get("/catalogue/cover/<int:book_id>")
def cover(book_id: int):
    found = db.session.get(Book, book_id) or abort(404)
    if not found.cover:
        abort(404)
    return send_from_directory(Path(current_app.instance_path) / "covers", found.cover)


def shelf_map(locations: list[str]) -> dict | None:
    """A simple floor diagram: one bay per shelf row letter, the book's rows highlighted.
    Shelf codes read ROW-BAY-LEVEL (A-03-2); anything else is shown as text only."""
    rows = []
    for code in locations:
        parts = code.split("-")
        if len(parts) >= 2 and len(parts[0]) == 1 and parts[0].isalpha() and parts[1].isdigit():
            rows.append((parts[0].upper(), int(parts[1]), parts[2] if len(parts) > 2 else ""))
    if not rows:
        return None
    letters = sorted({r[0] for r in rows} | {"A", "I", "K", "Z"})
    bays = max(6, max(r[1] for r in rows))
    return {"letters": letters, "bays": bays, "marks": {(r[0], r[1]) for r in rows}}


# ---- staff: books and copies ----


@staff_bp.get("/")
def books():
    query = request.args.get("q", "")[:60]
    page = _page()
    if query:
        result = search.search(db.session, query, page, page_size=30)
        hits, total, pages, capped = result.hits, result.total, result.pages, result.capped
    else:
        ids = services.new_arrival_ids(db.session, 30)
        hits, total, pages, capped = _hits(ids), len(ids), 1, False
    return render(
        "catalogue/staff_books.html",
        hits=hits,
        total=total,
        capped=capped,
        query=query,
        page=page,
        pages=pages,
        figures=services.figures(db.session, local_now().date()),
    )


@staff_bp.route("/book/new", methods=["GET", "POST"])
def book_new():
    form = BookForm()
    book_id, status = submit_form(form, lambda: services.save_book(db.session, None, form.data, actor=current_user, remote_addr=client_address()))
    if book_id is not None:
        flash(_("Book saved. Add its copies below."), "success")
        return redirect(url_for("catalogue_staff.book_edit", book_id=book_id))
    return render("catalogue/staff_book.html", status=status, form=form, book=None, copies=[], copy_form=None, confirm_form=None)


@staff_bp.route("/book/<int:book_id>", methods=["GET", "POST"])
def book_edit(book_id: int):
    found = db.session.get(Book, book_id) or abort(404)
    form = BookForm(obj=found) if request.method == "GET" else BookForm()
    saved, status = submit_form(form, lambda: services.save_book(db.session, found.id, form.data, actor=current_user, remote_addr=client_address()))
    if saved is not None and request.method == "POST":
        flash(_("Book saved."), "success")
        return redirect(url_for("catalogue_staff.book_edit", book_id=found.id))
    return _book_page(found, form, CopyForm(formdata=None), status)


def _book_page(found: Book, form, copy_form, status: int = 200, cover_form=None):
    copies = services.book_copies(db.session, found.id)
    return render(
        "catalogue/staff_book.html",
        status=status,
        form=form,
        book=found,
        copies=copies,
        due=services.due_dates(db.session, [c.id for c in copies]),
        copy_form=copy_form,
        confirm_form=ConfirmForm(),
        cover_form=cover_form or CoverForm(formdata=None),
    )


@staff_bp.post("/book/<int:book_id>/copies")
def copy_add(book_id: int):
    found = db.session.get(Book, book_id) or abort(404)
    form = CopyForm()
    saved, status = submit_form(
        form,
        lambda: services.save_copy(
            db.session,
            found.id,
            None,
            barcode=form.barcode.data,
            location=form.location.data,
            note=form.note.data,
            actor=current_user,
            remote_addr=client_address(),
        ),
    )
    if saved is not None:
        flash(_("Copy added."), "success")
        return redirect(url_for("catalogue_staff.book_edit", book_id=found.id))
    return _book_page(found, BookForm(obj=found, formdata=None), form, status)


@staff_bp.post("/book/<int:book_id>/cover")
def cover_upload(book_id: int):
    found = db.session.get(Book, book_id) or abort(404)
    form = CoverForm()
    covers = Path(current_app.instance_path) / "covers"
    saved, status = submit_form(
        form,
        lambda: services.set_cover(db.session, found.id, form.cover.data.read(2 * 1024 * 1024 + 1), covers, actor=current_user, remote_addr=client_address()),
    )
    if saved is not None:
        flash(_("Cover saved."), "success")
        return redirect(url_for("catalogue_staff.book_edit", book_id=found.id))
    return _book_page(found, BookForm(obj=found, formdata=None), CopyForm(formdata=None), status, cover_form=form)


@staff_bp.post("/copy/<int:copy_id>/missing")
def copy_missing(copy_id: int):
    return _set_missing(copy_id, True)


@staff_bp.post("/copy/<int:copy_id>/found")
def copy_found(copy_id: int):
    return _set_missing(copy_id, False)


def _set_missing(copy_id: int, missing: bool):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        copy = services.get_copy(db.session, copy_id)
        book_id = copy.book_id
        services.set_copy_missing(db.session, copy_id, missing, actor=current_user, remote_addr=client_address())
    except CatalogueError as error:
        if error.status == 404:
            abort(404)
        flash(str(error.message), "error")
        return redirect(url_for("catalogue_staff.book_edit", book_id=book_id))
    flash(_("Marked missing.") if missing else _("Marked back on the shelf."), "success")
    return redirect(url_for("catalogue_staff.book_edit", book_id=book_id))


# ---- staff: the shelf map ----


@staff_bp.route("/shelf-map", methods=["GET", "POST"])
def shelf_map_page():
    form = ShelfMapForm()
    saved, status = submit_form(
        form,
        lambda: services.set_shelf_map(
            db.session, form.picture.data.read(2 * 1024 * 1024 + 1), _map_folder(), actor=current_user, remote_addr=client_address()
        ),
    )
    if saved is not None and request.method == "POST":
        flash(_("Shelf map saved: visitors see it on every book page."), "success")
        return redirect(url_for("catalogue_staff.shelf_map_page"))
    return render("catalogue/staff_shelf_map.html", status=status, form=form, current=services.shelf_map_name(_map_folder()), confirm_form=ConfirmForm())


@staff_bp.get("/shelf-map/<name>")
def shelf_map_staff_picture(name: str):
    """The same picture for the staff page: the kiosk route answers enrolled kiosks only."""
    if name != services.shelf_map_name(_map_folder()):
        abort(404)
    return send_from_directory(_map_folder(), name, max_age=365 * 24 * 3600)


@staff_bp.post("/shelf-map/remove")
def shelf_map_remove():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.remove_shelf_map(db.session, _map_folder(), actor=current_user, remote_addr=client_address())
    flash(_("Shelf map removed."), "success")
    return redirect(url_for("catalogue_staff.shelf_map_page"))


# ---- staff: export ----


@staff_bp.get("/export.csv")
def export_csv():
    return csv_download(services.export_rows(db.session, actor=current_user, remote_addr=client_address()), "catalogue.csv")


@staff_bp.get("/export.xlsx")
def export_xlsx():
    return xlsx_download(services.export_rows(db.session, actor=current_user, remote_addr=client_address()), "catalogue.xlsx", "catalogue")


@staff_bp.get("/template.csv")
def template():
    response = csv_download([], "catalogue-template.csv")
    response.set_data(importing.template_csv())
    return response


# ---- staff: import ----


def _start_import(app, path: Path, batch_id: int, filename: str) -> None:
    """Run the import as `kiosk catalogue import` in a child process: the kiosk's threads
    never wait for it (no shared GIL) and pypinyin's ~55 MB stay out of the server. The
    child commits chunk by chunk with the batch's progress; a thread reaps it and marks the
    batch failed if it died without saying so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env |= {"KIOSK_INSTANCE_PATH": str(app.instance_path), "KIOSK_DATABASE_URL": app.config["DATABASE_URL"]}
    command = [sys.executable, "-m", "kiosk.cli", "catalogue", "import", str(path), "--quiet", "--batch", str(batch_id), "--filename", filename, "--remove"]
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def reap() -> None:
        errors = process.communicate()[1]
        if process.returncode != 0:
            app.logger.warning("catalogue import %s exited %s: %s", batch_id, process.returncode, errors.decode(errors="replace")[-500:])
            with app.app_context():
                try:
                    importing.fail_batch(db.session, batch_id, _("The import stopped because of an unexpected error."))
                finally:
                    db.session.remove()
        path.unlink(missing_ok=True)

    threading.Thread(target=reap, daemon=True, name=f"import-{batch_id}").start()


@staff_bp.route("/imports", methods=["GET", "POST"])
def imports():
    form = UploadForm()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        raw = upload.read(importing.MAX_UPLOAD_BYTES + 1)
        try:
            if len(raw) > importing.MAX_UPLOAD_BYTES:
                raise CatalogueError("file_too_large", _("The file is larger than %(n)d MB.", n=importing.MAX_UPLOAD_BYTES // 1024 // 1024), field="file")
            name = Path(upload.filename or "upload").name[:200]
            kind = importing.kind_of(name, raw[:8])
            expected = importing.count_records(raw, kind)
            batch_id = importing.start_batch(db.session, name, kind, actor=current_user, remote_addr=client_address(), expected=expected)
        except CatalogueError as error:
            show_error(form, error)
            status = error.status
        else:
            with tempfile.NamedTemporaryFile(delete=False, suffix="-" + kind) as handle:
                handle.write(raw)
            _start_import(current_app._get_current_object(), Path(handle.name), batch_id, name)  # type: ignore[attr-defined]
            return redirect(url_for("catalogue_staff.import_detail", batch_id=batch_id))
    elif request.method == "POST":
        status = 400
    return render("catalogue/staff_imports.html", status=status, form=form, batches=importing.recent_batches(db.session), headers=importing.TEMPLATE_HEADERS)


@staff_bp.get("/imports/<int:batch_id>")
def import_detail(batch_id: int):
    try:
        batch = importing.get_batch(db.session, batch_id)
    except CatalogueError:
        abort(404)
    return render("catalogue/staff_import.html", "catalogue/_import_progress.html", batch=batch)


# ---- staff: loans ----


def _member_from(raw: str) -> Member:
    code = (raw or "").strip()
    if members.looks_like_card(code):
        try:
            return members.resolve_card(db.session, code, member_signer(current_app.config), current_app.config["CENTRE_CODE"])
        except members.CardError as error:
            raise services.LoanError(error.code, error.message, field="member") from None
    number = code.lstrip("0")
    member = db.session.get(Member, int(number)) if number.isascii() and number.isdigit() and len(number) < 9 else None
    if member is None:
        raise services.LoanError("unknown_member", _("Scan the member card or type the member number."), field="member", status=404)
    return member


@staff_bp.route("/loans", methods=["GET", "POST"])
def loans():
    lend_form, return_form = LendForm(prefix="lend"), ReturnForm(prefix="return")
    status = 200
    if request.method == "POST":
        form = lend_form if "lend-barcode" in request.form else return_form
        result, status = submit_form(form, lambda: _loan_action(form))
        if result is not None:
            if form is lend_form:
                flash(
                    _("Lent: %(title)s (%(barcode)s), due %(due)s.", title=result.title, barcode=result.barcode, due=natural_date(result.due_date)),
                    "success",
                )
            else:
                flash(_("Returned: %(title)s (%(barcode)s).", title=result.title, barcode=result.barcode), "success")
            return redirect(url_for("catalogue_staff.loans"))
    today = local_now().date()
    return render(
        "catalogue/staff_loans.html", status=status, lend_form=lend_form, return_form=return_form, loans=services.open_loans(db.session, today), today=today
    )


def _loan_action(form):
    if isinstance(form, LendForm):
        member = _member_from(form.member.data)
        days = form.days.data or services.LOAN_DAYS
        return services.lend(db.session, member, form.barcode.data, zone=_zone(), days=days, staff=current_user, remote_addr=client_address())
    return services.give_back(db.session, form.barcode.data, zone=_zone(), staff=current_user, remote_addr=client_address())


@staff_bp.get("/overdue")
def overdue():
    today = local_now().date()
    return render("catalogue/staff_overdue.html", loans=services.open_loans(db.session, today, overdue_only=True), today=today)


# ---- staff: curated shelves ----


@staff_bp.route("/shelves", methods=["GET", "POST"])
@staff_bp.route("/shelves/<int:shelf_id>", methods=["GET", "POST"])
def shelves(shelf_id: int | None = None):
    current = None
    if shelf_id is not None:
        try:
            current = services.get_shelf(db.session, shelf_id)
        except CatalogueError:
            abort(404)
    form = ShelfForm()
    if request.method == "GET" and current is not None:
        form.name.data, form.description.data = current.name, current.description
        form.books.data = "\n".join(str(i) for i in services.shelf_book_ids(db.session, current.id))
    saved, status = submit_form(
        form,
        lambda: services.save_shelf(
            db.session,
            shelf_id,
            name=form.name.data,
            description=form.description.data,
            isbns_or_ids=form.books.data,
            actor=current_user,
            remote_addr=client_address(),
        ),
    )
    if saved is not None and request.method == "POST":
        flash(_("Shelf saved."), "success")
        return redirect(url_for("catalogue_staff.shelves", shelf_id=saved))
    return render("catalogue/staff_shelves.html", status=status, form=form, current=current, shelves=services.shelves(db.session))
