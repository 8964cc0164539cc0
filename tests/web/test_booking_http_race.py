"""Booking races over real HTTP: two `kiosk serve` processes on one SQLite file (a kiosk and the
desk PC's server, say), many visitors at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kiosk.booking import services
from tests.helpers import TEST_SECRET, TEST_SIGNING_KEY, Visitor, at_once

ZONE = ZoneInfo("Asia/Shanghai")


def tomorrow_key(hour: int, minute: int = 0) -> str:
    return (datetime.now(ZONE).date() + timedelta(days=1)).strftime("%Y%m%d") + f"{hour:02d}{minute:02d}"


def seed(capacity: int):
    seeded = {}

    def setup(session):
        service = services.save_service(session, None, name="理发", prefix="A", category="haircut", actor=None)
        for weekday in range(7):
            services.save_template(session, service, weekday=weekday, starts="09:00", ends="11:30", slot_minutes=20, capacity=str(capacity), actor=None)
        seeded["service"] = service.id

    return seeded, setup


def second_server(database) -> tuple[subprocess.Popen, str]:
    """Another `kiosk serve` process on the same instance (the same database file)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env |= {
        "KIOSK_INSTANCE_PATH": str(database.parent),
        "KIOSK_SECRET_KEY": TEST_SECRET,
        "KIOSK_SIGNING_KEY": TEST_SIGNING_KEY,
        "KIOSK_DISTRICT_KEY": "test-district-key",
    }
    process = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            return process, base
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("second kiosk did not start")


def book(visitor: Visitor, service_id: int, slot: str, phone: str):
    return visitor.post("/booking/book", {"service": service_id, "slot": slot, "request_key": services.new_request_key(), "phone": phone})


def test_two_hundred_tickets_from_two_server_processes_are_unique_and_gap_free(serve_process):
    seeded, setup = seed(capacity=100)
    kiosk = serve_process(setup=setup)
    process, other = second_server(kiosk.database)
    try:
        visitors = [Visitor(kiosk.url if i % 2 == 0 else other) for i in range(200)]
        for v in visitors:
            v.get("/booking")
        slots = [tomorrow_key(9), tomorrow_key(9, 20)]
        results = at_once([lambda v=v, i=i: book(v, seeded["service"], slots[i // 100], f"135{i:08d}") for i, v in enumerate(visitors)])
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert [status for status, _ in results] == [200] * 200, [body[:200] for status, body in results if status != 200][:3]
    with sqlite3.connect(kiosk.database) as db:
        seqs = [row[0] for row in db.execute("SELECT ticket_seq FROM booking ORDER BY ticket_seq")]
        tickets = {row[0] for row in db.execute("SELECT ticket FROM booking")}
        booked = [row[0] for row in db.execute("SELECT booked FROM service_slot ORDER BY starts_at")]
        events = db.execute("SELECT count(*) FROM outbox_event WHERE type = 'booking.created'").fetchone()[0]
    assert seqs == list(range(1, 201)) and len(tickets) == 200
    assert booked == [100, 100] and events == 200


def test_fifty_visitors_racing_for_the_last_place_over_http(serve_process):
    seeded, setup = seed(capacity=1)
    kiosk = serve_process(setup=setup)
    visitors = [Visitor(kiosk.url) for _ in range(50)]
    for v in visitors:
        v.get("/booking")
    results = at_once([lambda v=v, i=i: book(v, seeded["service"], tomorrow_key(10), f"136{i:08d}") for i, v in enumerate(visitors)])
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 49
    refusals = [body for status, body in results if status == 409]
    assert all("该时段已约满" in body and f'data-slot="{tomorrow_key(10, 20)}"' in body for body in refusals)
    assert kiosk.count("booking") == 1
