"""The home screen's notices come from an in-process cache: no query per tap (only kiosk.cache's
``PRAGMA data_version`` check), yet a change is shown at once, whether written here or by
another process, and when the clock says so (expiry, scheduled publishing)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

import kiosk.home.services as notices
from kiosk.extensions import db
from kiosk.home.services import current_notices, invalidate_notices, upsert_notice

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """The services' wall clock and monotonic clock, moved by the test."""
    state = {"now": T0}
    monkeypatch.setattr(notices, "utcnow", lambda: state["now"])
    invalidate_notices()

    def advance(seconds: float) -> None:
        state["now"] += timedelta(seconds=seconds)

    return advance


@pytest.fixture
def statements(app):
    seen: list[str] = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    yield seen
    event.remove(db.engine, "before_cursor_execute", listener)


def notice(session, key: str, published: timedelta = timedelta(hours=-1), expires: timedelta | None = None, title: str | None = None):
    upsert_notice(
        session, key=key, source="centre", title=title or key, body="", published_at=T0 + published, expires_at=None if expires is None else T0 + expires
    )


def titles(session) -> list[str]:
    return [n.title for n in current_notices(session)]


def test_a_repeated_read_runs_no_sql(session, clock, statements):
    notice(session, "a")
    session.commit()
    assert titles(session) == ["a"]
    statements.clear()
    for _ in range(5):
        assert titles(session) == ["a"]
    assert [s for s in statements if s != "PRAGMA data_version"] == []


def test_a_written_notice_shows_at_once_in_every_session(app, session, clock):
    """Fails without the invalidation in upsert_notice (tried: the old list stays)."""
    notice(session, "a")
    session.commit()
    assert titles(session) == ["a"]
    notice(session, "b", published=timedelta(minutes=-1))
    notice(session, "a", title="a, corrected")
    session.commit()
    assert titles(session) == ["b", "a, corrected"]
    db.session.remove()  # the next request's session
    assert titles(db.session) == ["b", "a, corrected"]


def test_a_rolled_back_notice_never_shows(session, clock):
    notice(session, "a")
    session.commit()
    assert titles(session) == ["a"]
    notice(session, "draft", published=timedelta(minutes=-1))
    assert titles(session) == ["draft", "a"]  # the writing session sees its own change
    session.rollback()
    assert titles(session) == ["a"]


def test_expiry_and_scheduled_notices_follow_the_clock(session, clock):
    """Fails without the entry's valid_until (tried: the expired notice stays until max age)."""
    notice(session, "ends soon", expires=timedelta(seconds=10))
    notice(session, "later", published=timedelta(seconds=20), title="starts later")
    session.commit()
    assert titles(session) == ["ends soon"]
    clock(11)
    assert titles(session) == []
    clock(10)
    assert titles(session) == ["starts later"]


def test_a_write_by_another_process_shows_at_once(app, session, clock, instance_path):
    """Through kiosk.cache's data_version check (before: only after a 60 s max age)."""
    notice(session, "a")
    session.commit()
    assert titles(session) == ["a"]
    with sqlite3.connect(instance_path / "kiosk.sqlite3") as raw:
        raw.execute(
            "INSERT INTO notice (key, source, title, body, published_at) VALUES ('sync', 'district', 'from the hub', '', ?)",
            ((T0 - timedelta(minutes=1)).replace(tzinfo=None).isoformat(sep=" "),),
        )
    db.session.remove()  # as at the end of a request
    assert titles(session) == ["from the hub", "a"]


def test_a_read_that_raced_a_write_is_not_kept(session, clock, monkeypatch):
    """A reader that started before a commit must not store its (older) answer: the commit
    moves the generation on while it reads (fails without the generation test in the store)."""
    notice(session, "a")
    session.commit()
    db.session.remove()
    read = notices.Session.scalars

    def commit_meanwhile(self, *args, **kwargs):
        result = read(self, *args, **kwargs)
        notices.commit_generation.bump()  # as another thread's commit would
        return result

    monkeypatch.setattr(notices.Session, "scalars", commit_meanwhile)
    assert titles(db.session) == ["a"]
    monkeypatch.undo()
    assert notices._entries.get(db.session.get_bind(), {}).get(4) is None


def test_a_core_commit_outside_a_session_is_seen(app, session, clock):
    """A notice written with a Core engine.begin() (no Session, no after_commit) shows at the
    next read (kiosk.cache's engine-level commit event)."""
    notice(session, "a")
    session.commit()
    db.session.remove()
    db.engine.dispose()  # one pooled connection: the read's check and the write share it
    assert titles(db.session) == ["a"]
    db.session.remove()
    with db.engine.begin() as connection:
        connection.execute(notices.Notice.__table__.insert().values(key="core", source="centre", title="core", body="", published_at=T0 - timedelta(minutes=1)))
    assert titles(db.session) == ["core", "a"]
