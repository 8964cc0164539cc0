"""A/B in process: one change on and off in alternating batches of requests, same process.

    .venv/bin/python bench/ab.py MODULE:FUNCTION [--batches 30] [--size 40] [--get PATH] [--threads N] [--keypad | --booking]
    .venv/bin/python bench/ab.py --versus [--batches 30] [--size 40] [--threads N]

MODULE:FUNCTION is a function ``toggle(app, on: bool)`` that switches the change (used while
measuring issue 9's changes one by one). Requests are phone check-ins (POST /c/checkin) unless:
--get PATH measures GET PATH on an enrolled kiosk that keeps its cookies; --keypad check-ins
typed on the kiosk's keypad (POST /checkin/<id>/phone); --booking bookings from the kiosk's
keypad (POST /booking/book as bench/booking.lua sends them: a new phone and request key each,
the slots taken round the month). --versus toggles nothing: its "on" batches are bookings and
its "off" batches phone check-ins, each on an instance of its own in the same process (the
ratio bench/booking.py measures under wrk, without the server and the load generator).
Printed: CPU time per request (thread time: the commit's wait for the disk is not CPU) and wall
time, median and p10 of the batches, on and off. --threads N sends each batch's requests from N
threads at once (so that they queue on the writer lock and share commits, as under load); CPU
time is then the whole process's.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import booking
from checkin import MEMBERS_PER_THREAD, prepare
from common import enrol_kiosk

BOOKING_PLACES = 40  # a slot's places: enough for every batch of a long A/B (580 slots)


def checkins(tmp: str, args: argparse.Namespace) -> tuple[Any, Callable[[], None]]:
    """The app and one request of the check-in kinds (phone, keypad, GET)."""
    token = prepare(Path(tmp))
    device = enrol_kiosk(Path(tmp))
    os.environ.update({"KIOSK_INSTANCE_PATH": tmp, "KIOSK_PHONE_CHECKIN_RATE_LIMIT": "10000000 per minute", "KIOSK_PASS_CHECKIN_LIMIT": "10000000 per minute"})
    from kiosk import create_app

    app = create_app()
    client = app.test_client(use_cookies=False)
    page = client.get(f"/c/{token}")
    html = page.get_data(as_text=True)
    # Like wrk: every request sends the cookie of the phone page (each is a new phone).
    cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    fields = dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', html))
    phones = (f"150{t:02d}{c:06d}" for t in range(4) for c in range(1, MEMBERS_PER_THREAD + 1))
    kiosk = app.test_client()
    kiosk.set_cookie(*device.split("=", 1))
    kiosk_token = ""
    if args.keypad:
        app.config["KIOSK_CHECKIN_RATE_LIMIT"] = app.config["NUMBER_CHECKIN_RATE_LIMIT"] = "10000000 per minute"
        kiosk_token = re.search(r'name="csrf-token" content="([^"]+)"', kiosk.get("/").get_data(as_text=True)).group(1)
    numbers = threading.Lock()

    def one() -> None:
        if args.get:
            assert kiosk.get(args.get).status_code == 200
            return
        with numbers:
            number = next(phones)
        if args.keypad:
            headers = {"X-CSRFToken": kiosk_token, "HX-Request": "true"}
            response = kiosk.post(f"/checkin/{fields['activity']}/phone", data={"phone": number}, headers=headers)
            assert response.status_code == 200, response.status_code
            return
        data = {"activity": fields["activity"], "pass": fields["pass"], "phone": number}
        response = client.post("/c/checkin", data=data, headers={"X-CSRFToken": fields["csrf_token"], "Cookie": cookie})
        assert response.status_code == 200, response.status_code

    return app, one


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("toggle", nargs="?")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--get", metavar="PATH")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keypad", action="store_true", help="check-ins typed on the kiosk's keypad (POST /checkin/<id>/phone) instead")
    parser.add_argument("--booking", action="store_true", help="bookings from the kiosk's keypad (POST /booking/book) instead")
    parser.add_argument("--versus", action="store_true", help="no toggle: bookings (on) against phone check-ins (off)")
    args = parser.parse_args()
    if not args.versus and not args.toggle:
        parser.error("a toggle MODULE:FUNCTION, or --versus")
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as tmp_booking:
        if args.versus:
            _app, checkin_one = checkins(tmp, args)
            _app, booking_one = booking.keypad_bookings(tmp_booking, BOOKING_PLACES)
            kinds = {True: booking_one, False: checkin_one}

            def toggle(_app, _on: bool) -> None:
                pass

            app = _app
        else:
            module, _, name = args.toggle.partition(":")
            sys.path.insert(0, str(Path.cwd()))
            toggle = getattr(importlib.import_module(module), name)
            app, one = booking.keypad_bookings(tmp_booking, BOOKING_PLACES) if args.booking else checkins(tmp, args)
            kinds = {True: one, False: one}

        def requests(one: Callable[[], None], count: int) -> None:
            for _ in range(count):
                one()

        def batch(on: bool) -> tuple[float, float]:
            clock = time.thread_time if args.threads == 1 else time.process_time
            wall, cpu = time.perf_counter(), clock()
            if args.threads == 1:
                requests(kinds[on], args.size)
            else:
                workers = [threading.Thread(target=requests, args=(kinds[on], args.size)) for _ in range(args.threads)]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
            done = args.size * args.threads
            return (clock() - cpu) / done * 1000, (time.perf_counter() - wall) / done * 1000

        results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for on in (True, False) * 3:
            toggle(app, on)
            batch(on)  # warm-up
        for index in range(args.batches * 2):
            on = index % 2 == 0
            toggle(app, on)
            results[on].append(batch(on))
        names = {True: "booking ", False: "check-in"} if args.versus else {True: "on ", False: "off"}
        for on in (True, False):
            cpu = sorted(c for c, _ in results[on])
            wall = sorted(w for _, w in results[on])
            p10 = cpu[len(cpu) // 10]
            print(
                f"{names[on]}: CPU ms per request median {statistics.median(cpu):.3f}, p10 {p10:.3f}; "
                f"wall median {statistics.median(wall):.3f}, p10 {wall[len(wall) // 10]:.3f}"
            )
        if args.versus:
            ratio = statistics.median(c for c, _ in results[False]) / statistics.median(c for c, _ in results[True])
            print(f"check-in CPU ÷ booking CPU (the req/s ratio booking ÷ check-in if both are CPU-bound): {ratio:.2f}")


if __name__ == "__main__":
    main()
