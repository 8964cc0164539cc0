"""Where one request's time goes, in process (cProfile over the WSGI app, no server, no wrk).

    .venv/bin/python bench/inprocess.py [path] [--requests 2000] [--no-cookie] [--top 30]

Prints the mean time per request and the functions with the most cumulative time. The client
keeps its cookie like a kiosk browser unless --no-cookie.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import enrol_kiosk, prepare_instance


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", default="/")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--no-cookie", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prepare_instance(Path(tmp))
        device = enrol_kiosk(Path(tmp))
        os.environ["KIOSK_INSTANCE_PATH"] = tmp
        from kiosk import create_app

        app = create_app()
        client = app.test_client(use_cookies=not args.no_cookie)
        name, _, value = device.partition("=")
        client.set_cookie(name, value)  # an enrolled kiosk browser
        for _ in range(50):
            assert client.get(args.path).status_code < 400
        start = time.perf_counter()
        for _ in range(args.requests):
            client.get(args.path)
        plain = (time.perf_counter() - start) / args.requests
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            client.get(args.path)
        profiler.disable()
        print(f"{args.path}: {plain * 1000:.3f} ms per request without the profiler (test client, in process)")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
