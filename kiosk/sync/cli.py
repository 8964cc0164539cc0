"""`kiosk enrol CODE --hub URL`, `kiosk sync` and `kiosk sync-status` (commands of the sync
feature, registered on the app's CLI through a blueprint)."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Blueprint, current_app
from flask_babel import gettext as _

bp = Blueprint("sync_cli", __name__, cli_group=None)

LOCK_FILE_NAME = "sync.lock"


class SyncBusy(Exception):
    pass


@contextmanager
def sync_lock(instance_path: Path) -> Iterator[None]:
    """One `kiosk sync` at a time per kiosk (the timer, the staff page's button, a person at
    the console). flock is released by the kernel when the process dies, even by SIGKILL."""
    instance_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(instance_path / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncBusy from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def sync_running(instance_path: Path) -> bool:
    try:
        with sync_lock(instance_path):
            return False
    except SyncBusy:
        return True


def _app_version() -> str:
    import kiosk

    return kiosk.__version__


@bp.cli.command("enrol")
@click.argument("code")
@click.option("--hub", "hub_url", required=True, help="The district hub's address, e.g. https://hub.example.gov.cn")
def enrol_command(code: str, hub_url: str) -> None:
    """Enrol this kiosk with the district hub using a one-time code from the district."""
    from kiosk.extensions import db
    from kiosk.sync.client import HubClient
    from kiosk.sync.services import SyncError, enrol

    try:
        state = enrol(db.session, HubClient(hub_url, app_version=_app_version()), code)
    except SyncError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(_("Enrolled as centre %(centre)s with the hub at %(hub)s.", centre=state.centre_code, hub=state.hub_url))


@bp.cli.command("sync")
@click.option("--budget", default=1800, show_default=True, type=float, help="Seconds to keep retrying an unreachable hub.")
@click.option("--quiet", is_flag=True, help="No progress bar (timers, the staff page).")
@click.option("--no-pull", is_flag=True, help="Only push the outbox.")
@click.option("--roll-key", is_flag=True, help="Ask the hub for a new key first (the old one stops working once the new one is used).")
def sync_command(budget: float, quiet: bool, no_pull: bool, roll_key: bool) -> None:
    """Push every pending event to the district hub, then pull district activities and notices."""
    from kiosk.extensions import db
    from kiosk.features import registry
    from kiosk.sync import services

    try:
        with sync_lock(Path(current_app.instance_path)):
            # Nightly events (daily counts…) first, so this run sends them; also before the
            # kiosk is enrolled (they wait in the outbox like everything else).
            for failure in services.run_before_sync(db.session, registry().before_sync):
                click.echo(_("A feature's nightly step failed (the sync goes on): %(error)s", error=failure), err=True)
            state = services.sync_status(db.session)
            try:
                client = services.client_for(state, app_version=_app_version())
                if roll_key:
                    services.roll_key(db.session, client)
            except services.SyncError as error:
                raise click.ClickException(str(error.message)) from None
            bar = None
            show = not quiet and sys.stderr.isatty()

            def progress(done: int, total: int) -> None:
                nonlocal bar
                if not show:
                    return
                if bar is None:
                    bar = click.progressbar(length=max(total, 1), label=_("Sending events"), file=sys.stderr, show_pos=True)
                    bar.__enter__()
                bar.update(done - bar.pos)

            try:
                report = services.run_sync(db.session, client, budget_seconds=budget, progress=progress, pull=not no_pull)
            finally:
                if bar is not None:
                    bar.__exit__(None, None, None)
    except SyncBusy:
        click.echo(_("Another sync is running; this one stops."), err=True)
        sys.exit(3)
    if not quiet:
        click.echo(
            _(
                "Sent %(pushed)d new events in %(batches)d batches; the hub holds up to %(acked)d; %(pending)d pending; %(pulled)d district items pulled.",
                pushed=report.pushed,
                batches=report.batches,
                acked=report.acked_seq,
                pending=report.pending,
                pulled=report.pulled,
            )
        )
    if report.retries:
        click.echo(_("The hub could not be reached %(n)d times; retried with backoff.", n=report.retries), err=True)
    if report.conflicts:
        click.echo(_("%(n)d events were set aside by the hub as conflicting (see the district's conflict list).", n=len(report.conflicts)), err=True)
    if not report.ok:
        click.echo(_("Sync failed: %(error)s", error=report.error), err=True)
        sys.exit(1)


@bp.cli.command("sync-status")
def sync_status_command() -> None:
    """Show this kiosk's link to the hub: last success, pending events, last error."""
    from kiosk.extensions import db
    from kiosk.sync import services

    state = services.sync_status(db.session)
    click.echo(f"hub: {state.hub_url or '-'}  centre: {state.centre_code or '-'}  key: {state.key_id or '-'}")
    click.echo(f"acked_seq: {state.acked_seq}  pending: {services.pending_count(db.session)}  pull_cursor: {state.pull_cursor}")
    click.echo(f"last success: {state.last_success_at or '-'}  last attempt: {state.last_attempt_at or '-'}")
    click.echo(f"last error: {state.last_error or '-'}")
    db.session.rollback()
