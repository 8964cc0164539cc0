"""`kiosk catalogue import FILE`: import a CSV / XLSX / MARC catalogue with a progress bar."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

catalogue_cli = AppGroup("catalogue", help="Reading-hall catalogue.")


@catalogue_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--batch", "batch_id", type=int, default=None, hidden=True, help="Continue an import batch the upload page started.")
@click.option("--filename", default=None, hidden=True, help="The uploaded file's name (for the import history).")
@click.option("--remove", is_flag=True, hidden=True, help="Delete FILE afterwards (the upload page's temporary copy).")
def import_command(file: Path, quiet: bool, batch_id: int | None, filename: str | None, remove: bool) -> None:
    """Import books and copies from FILE (CSV/XLSX with the Chinese template headers, or MARC21 / CNMARC ISO 2709 in UTF-8 or GB18030). Re-importing updates; bad records are listed and skipped."""
    from tqdm import tqdm

    from kiosk.catalogue.importing import count_records, import_file, kind_of
    from kiosk.catalogue.services import CatalogueError
    from kiosk.extensions import db

    raw = file.read_bytes()
    try:
        try:
            total = count_records(raw, kind_of(filename or file.name, raw[:8]))
        except CatalogueError as error:
            raise click.ClickException(str(error.message)) from None
        with tqdm(total=total, unit="rec", disable=quiet, desc=file.name) as bar:
            try:
                report = import_file(db.session, file, progress=bar.update, batch_id=batch_id, filename=filename)
            except CatalogueError as error:
                raise click.ClickException(str(error.message)) from None
    finally:
        if remove:
            file.unlink(missing_ok=True)
    click.echo(
        _(
            "Read %(total)d records: %(created)d new books, %(updated)d updated, %(unchanged)d unchanged, %(copies)d new copies, %(failed)d refused.",
            total=report.total,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            copies=report.copies,
            failed=report.failed,
        )
    )
    for error in report.errors:
        click.echo(_("Record %(n)d: %(reason)s", n=error["record"], reason=error["reason"]), err=True)
