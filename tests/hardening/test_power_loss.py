"""Power loss, as far as a test can reach it (issue 14): a writer process checks members in one
by one (each check-in, its points entry and its outbox event in one transaction, WAL with
synchronous=FULL) while the test copies the database files at arbitrary moments: the writer
is frozen (SIGSTOP), `kiosk.sqlite3` and `kiosk.sqlite3-wal` are copied (never `-shm`, which
a power cut loses), the writer goes on (SIGCONT). Half the copies also lose a random tail of
the WAL after its last commit frame, as a write that never reached the disk would: with
synchronous=FULL every commit is synced before the next write (and before a checkpoint copies
its pages into the main file), so only the transaction in progress can be lost. Cutting into
synced frames is not a power cut: it hands SQLite older page versions than the main file
already holds (a checkpoint ran) and reads as a malformed image.

Each copy opens with `PRAGMA integrity_check` ok and holds a prefix of the check-ins: members
1..k and no other, each with its points entry and event, the outbox without gaps; an untorn
copy holds at least every check-in the writer had reported committed before it was frozen.
What a test cannot reach: the disk's own write cache lying about a flush (docs/deploy.md says
which disk settings a kiosk PC needs).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kiosk.extensions import db
from kiosk.members.services import register_member
from tests.helpers import TEST_SECRET, TEST_SIGNING_KEY, copy_database, make_app, open_activity_now

MEMBERS = 600
COPIES = 30

WRITER = """
import sys
from pathlib import Path
from sqlalchemy import select
from kiosk.checkin import settings
from kiosk.checkin.models import CheckinMethod
from kiosk.checkin.services import check_in
from kiosk.extensions import db
from kiosk.members.models import Member
from tests.helpers import make_app

app = make_app(Path(sys.argv[1]), TESTING=False)
with app.app_context():
    activity_id = int(sys.argv[2])
    members = list(db.session.scalars(select(Member).order_by(Member.id)))
    rules = settings.rules(app.config)
    db.session.rollback()
    print("ready", flush=True)
    for i, member in enumerate(members, 1):
        check_in(db.session, activity_id, rules=rules, method=CheckinMethod.KIOSK_PHONE, member=member)
        print(i, flush=True)
"""


def _seed(instance: Path, members: int = MEMBERS) -> int:
    app = make_app(instance)
    with app.app_context():
        activity = open_activity_now(db.session, title="停电演练", points="3", capacity="")
        for i in range(members):
            register_member(
                db.session,
                name=f"会员{chr(0x4E00 + i)}",
                phone=f"1390000{i:04d}",
                community="",
                age_band="60-69",
                consent=True,
                consent_version="t",
                actor=None,
            )
        # The registrations are not what is tested: checkpoint them into the main file.
        db.session.commit()
        activity_id = activity.id
        db.session.remove()
        db.engine.dispose()
    with sqlite3.connect(instance / "kiosk.sqlite3") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return activity_id


def _unsynced_tail_starts(wal: Path) -> int:
    """Where the WAL's last commit frame ends: the bytes after it belong to the transaction in
    progress, the only ones a power cut can take. Frames are those of the WAL's current
    generation (the header's salts); older frames left behind a restart are not read by SQLite."""
    data = wal.read_bytes()
    if len(data) < 32:
        return 0
    page_size = int.from_bytes(data[8:12], "big")
    salts = data[16:24]
    frame = 24 + page_size
    end = 32
    offset = 32
    while offset + frame <= len(data) and data[offset + 8 : offset + 16] == salts:
        offset += frame
        if int.from_bytes(data[offset - frame + 4 : offset - frame + 8], "big"):  # the commit frame's database size
            end = offset
    return end


def _check_copy(path: Path, at_least: int, first_member: int) -> int:
    """The copy's number of check-ins (a prefix of the writer's order), after checking it."""
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        members = [m for (m,) in connection.execute("SELECT member_id FROM check_in ORDER BY member_id")]
        k = len(members)
        assert members == list(range(first_member, first_member + k)), "not a prefix of the writer's check-ins"
        assert k >= at_least, f"{at_least} reported committed before the copy, {k} in it"
        lacking = connection.execute(
            """SELECT count(*) FROM check_in c WHERE NOT EXISTS (SELECT 1 FROM points_entry p WHERE p.reference = 'checkin:' || c.id)
               OR NOT EXISTS (SELECT 1 FROM outbox_event e WHERE e.type = 'checkin.created' AND json_extract(e.payload, '$.checkin_id') = c.id)"""
        ).fetchone()[0]
        assert lacking == 0, "a torn check-in: without its points entry or its event"
        assert connection.execute("SELECT count(*) FROM points_entry WHERE reason = 'checkin'").fetchone()[0] == k
        events, top = connection.execute("SELECT count(*), coalesce(max(id), 0) FROM outbox_event").fetchone()
        assert events == top, "a gap in the outbox sequence"
        return k
    finally:
        connection.close()


def test_copies_of_the_files_taken_mid_write_open_clean_with_a_prefix_of_the_check_ins(tmp_path: Path, migrated_database: Path):
    instance = tmp_path / "instance"
    instance.mkdir()
    copy_database(migrated_database, instance / "kiosk.sqlite3")
    activity_id = _seed(instance)
    with sqlite3.connect(instance / "kiosk.sqlite3") as connection:
        first_member = connection.execute("SELECT min(id) FROM member").fetchone()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_SECRET_KEY": TEST_SECRET, "KIOSK_SIGNING_KEY": TEST_SIGNING_KEY}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(instance), str(activity_id)], env=env, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    committed = 0
    ready = threading.Event()

    def follow() -> None:
        nonlocal committed
        for line in writer.stdout:
            if line.strip() == "ready":
                ready.set()
            elif line.strip().isdigit():
                committed = int(line)

    threading.Thread(target=follow, daemon=True).start()
    assert ready.wait(60), "the writer did not start"
    rng = random.Random(14)
    counts = []
    try:
        for n in range(COPIES):
            time.sleep(rng.uniform(0.005, 0.08))
            if writer.poll() is not None:
                break
            os.kill(writer.pid, signal.SIGSTOP)
            try:
                reported = committed
                target = tmp_path / f"copy{n}"
                target.mkdir()
                shutil.copyfile(instance / "kiosk.sqlite3", target / "kiosk.sqlite3")
                wal = instance / "kiosk.sqlite3-wal"
                if wal.exists():
                    shutil.copyfile(wal, target / "kiosk.sqlite3-wal")
            finally:
                os.kill(writer.pid, signal.SIGCONT)
            torn = n % 2 == 1 and (target / "kiosk.sqlite3-wal").exists()
            if torn:  # the WAL's unsynced bytes never reached the disk
                whole = tmp_path / f"whole{n}"
                shutil.copytree(target, whole)
                size = (target / "kiosk.sqlite3-wal").stat().st_size
                synced = _unsynced_tail_starts(target / "kiosk.sqlite3-wal")
                with open(target / "kiosk.sqlite3-wal", "r+b") as fh:
                    fh.truncate(rng.randrange(synced, size + 1))
                # What the cut took was never committed: the torn copy holds every check-in the
                # whole one does (and each at least what the writer had reported).
                expected = _check_copy(whole / "kiosk.sqlite3", reported, first_member)
                assert _check_copy(target / "kiosk.sqlite3", expected, first_member) == expected
                counts.append(expected)
                shutil.rmtree(whole)
            else:
                counts.append(_check_copy(target / "kiosk.sqlite3", reported, first_member))
            shutil.rmtree(target)
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(timeout=30)
    assert len(counts) >= 10, counts
    # The copies were taken while the writer was writing, not all before or after it.
    assert len({c for c in counts if 0 < c < MEMBERS}) >= 5, counts


# ---- the checker can fail: each broken copy below must be reported ----


def _torn_page(path: Path) -> None:
    """The check-ins' table page half rewritten: its first half garbage (a write the disk cut short)."""
    with sqlite3.connect(path) as connection:
        page = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'check_in'").fetchone()[0]
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page)
        fh.write(os.urandom(page // 2))


BROKEN_COPIES = {
    "torn page": (_torn_page, (AssertionError, sqlite3.DatabaseError), None),
    "check-in without its points entry": (
        "DELETE FROM points_entry WHERE id = (SELECT max(id) FROM points_entry WHERE reason = 'checkin')",
        AssertionError,
        "a torn check-in",
    ),
    "check-ins not a prefix": (
        "DELETE FROM check_in WHERE id = (SELECT min(id) FROM check_in)",
        AssertionError,
        "not a prefix",
    ),
    "a gap in the outbox": ("UPDATE outbox_event SET id = id + 1000 WHERE id = (SELECT max(id) FROM outbox_event)", AssertionError, "a gap"),
    "fewer than reported": (None, AssertionError, "reported committed before the copy"),
}


@pytest.fixture(scope="module")
def committed_copy(tmp_path_factory, migrated_database: Path) -> tuple[Path, int, int]:
    """A database with 40 members checked in, in order, and fully checkpointed."""
    from sqlalchemy import select

    from kiosk.checkin import settings
    from kiosk.checkin.models import CheckinMethod
    from kiosk.checkin.services import check_in
    from kiosk.members.models import Member

    instance = tmp_path_factory.mktemp("committed")
    copy_database(migrated_database, instance / "kiosk.sqlite3")
    activity_id = _seed(instance, members=40)
    app = make_app(instance)
    with app.app_context():
        rules = settings.rules(app.config)
        for member in list(db.session.scalars(select(Member).order_by(Member.id))):
            check_in(db.session, activity_id, rules=rules, method=CheckinMethod.KIOSK_PHONE, member=member)
        first = db.session.scalar(select(Member.id).order_by(Member.id))
        db.session.remove()
        db.engine.dispose()
    with sqlite3.connect(instance / "kiosk.sqlite3") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _check_copy(instance / "kiosk.sqlite3", 40, first) == 40
    return instance / "kiosk.sqlite3", first, 40


@pytest.mark.parametrize("broken", list(BROKEN_COPIES))
def test_the_copy_checker_reports_a_broken_copy(committed_copy, tmp_path: Path, broken: str):
    source, first, count = committed_copy
    copy = tmp_path / "kiosk.sqlite3"
    shutil.copyfile(source, copy)
    damage, raised, message = BROKEN_COPIES[broken]
    at_least = count + 1 if damage is None else 0
    if callable(damage):
        damage(copy)
    elif damage is not None:
        with sqlite3.connect(copy) as connection:
            assert connection.execute(damage).rowcount == 1
    with pytest.raises(raised, match=message):
        _check_copy(copy, at_least, first)
