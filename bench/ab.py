"""A/B in process: one change on and off in alternating batches of phone check-ins, same process.

    .venv/bin/python bench/ab.py MODULE:FUNCTION [--batches 30] [--size 40] [--get PATH]

MODULE:FUNCTION is a function ``toggle(app, on: bool)`` that switches the change (used while
measuring issue 9's changes one by one). --get PATH measures GET PATH on an enrolled kiosk
that keeps its cookies instead of phone check-ins. Printed: CPU time per request (thread time: the
commit's wait for the disk is not CPU) and wall time, median and p10 of the batches, on and off.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checkin import MEMBERS_PER_THREAD, prepare
from common import enrol_kiosk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("toggle")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--get", metavar="PATH")
    args = parser.parse_args()
    module, _, name = args.toggle.partition(":")
    sys.path.insert(0, str(Path.cwd()))
    toggle = getattr(importlib.import_module(module), name)
    with tempfile.TemporaryDirectory() as tmp:
        token = prepare(Path(tmp))
        device = enrol_kiosk(Path(tmp))
        os.environ.update(
            {"KIOSK_INSTANCE_PATH": tmp, "KIOSK_PHONE_CHECKIN_RATE_LIMIT": "10000000 per minute", "KIOSK_PASS_CHECKIN_LIMIT": "10000000 per minute"}
        )
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

        def batch() -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.thread_time()
            for _ in range(args.size):
                if args.get:
                    assert kiosk.get(args.get).status_code == 200
                    continue
                data = {"activity": fields["activity"], "pass": fields["pass"], "phone": next(phones)}
                response = client.post("/c/checkin", data=data, headers={"X-CSRFToken": fields["csrf_token"], "Cookie": cookie})
                assert response.status_code == 200, response.status_code
            return (time.thread_time() - cpu) / args.size * 1000, (time.perf_counter() - wall) / args.size * 1000

        results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for on in (True, False) * 3:
            toggle(app, on)
            batch()  # warm-up
        for index in range(args.batches * 2):
            on = index % 2 == 0
            toggle(app, on)
            results[on].append(batch())
        for on in (True, False):
            cpu = sorted(c for c, _ in results[on])
            wall = sorted(w for _, w in results[on])
            p10 = cpu[len(cpu) // 10]
            print(
                f"{'on ' if on else 'off'}: CPU ms per request median {statistics.median(cpu):.3f}, p10 {p10:.3f}; "
                f"wall median {statistics.median(wall):.3f}, p10 {wall[len(wall) // 10]:.3f}"
            )


if __name__ == "__main__":
    main()
