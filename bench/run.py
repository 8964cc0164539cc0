"""Foundation benchmark: the kiosk's home page and `/healthz` against a bare Flask hello-world,
both under waitress with the same threads, driven by the same wrk load in the same run.

    make bench            (or: .venv/bin/python bench/run.py [--seconds 5] [--repeat 3])

Both servers run side by side (the idle one costs nothing); within each repetition and each
load the hello-world row is measured right before the kiosk rows, so the ratio compares runs a
few seconds apart. Printed: medians over the repetitions with the range, p50/p95/p99, the ratio
to hello-world (median of the per-repetition ratios) and each server's peak RSS.

Home page rows:
- "/ (cookie kept)": what a kiosk browser does: it keeps the session cookie of its first visit
  (wrk sends the Cookie header taken from a first request).
- "/ (no session)": every request a new visitor without a session cookie (worst case: a new
  session); the kiosk's device cookie is sent (kiosk pages answer only an enrolled browser).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, HEADER, ROOT, THREADS, enrol_kiosk, format_row, free_port, kept_cookie, machine, peak_rss_mib, prepare_instance, server, summarise, wrk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 20])
    parser.add_argument(
        "--compare", type=Path, help="another checkout (e.g. `git worktree add /tmp/before main`): its kiosk is measured in the same repetitions"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        prepare_instance(Path(tmp))
        device = enrol_kiosk(Path(tmp))  # the compared checkout gets a copy of the database: the same device
        hello_port, kiosk_port = free_port(), free_port()
        hello_cmd = [sys.executable, str(ROOT / "bench" / "hello.py"), str(hello_port), str(THREADS)]
        kiosk_cmd = [str(BIN / "kiosk"), "serve", "--port", str(kiosk_port), "--threads", str(THREADS)]
        with contextlib.ExitStack() as stack:
            hello = stack.enter_context(server(hello_cmd, hello_port))
            kiosk = stack.enter_context(server(kiosk_cmd, kiosk_port, env={"KIOSK_INSTANCE_PATH": tmp}, probe="/healthz"))
            hello_url = f"http://127.0.0.1:{hello_port}"
            kiosks = {"": f"http://127.0.0.1:{kiosk_port}"}
            if args.compare:
                # The same instance (a copy of its database), the other checkout's code.
                other = Path(tmp) / "compare"
                other.mkdir()
                for name in ("kiosk.toml", "kiosk.sqlite3", "kiosk.sqlite3-wal"):
                    if (Path(tmp) / name).exists():
                        shutil.copy(Path(tmp) / name, other / name)
                port = free_port()
                env = {"KIOSK_INSTANCE_PATH": str(other), "PYTHONPATH": str(args.compare.resolve())}
                compared = stack.enter_context(server([*kiosk_cmd[:3], str(port), *kiosk_cmd[4:]], port, env=env, probe="/healthz"))
                kiosks[f" [{args.compare.name}]"] = f"http://127.0.0.1:{port}"
            targets = {}
            for tag, url in kiosks.items():
                targets |= {
                    f"/ (cookie kept){tag}": (url + "/", {"Cookie": kept_cookie(url + "/", device)}),
                    f"/ (no session){tag}": (url + "/", {"Cookie": device}),
                    f"/healthz{tag}": (url + "/healthz", {}),
                }
            wrk(hello_url + "/", 20, 2)  # warm-up
            for url, headers in targets.values():
                wrk(url, 20, 2, headers=headers)
            samples: dict[tuple[str, int], list[dict]] = {}
            for _ in range(args.repeat):
                for connections in args.connections:
                    samples.setdefault(("hello", connections), []).append(wrk(hello_url + "/", connections, args.seconds))
                    for what, (url, headers) in targets.items():
                        samples.setdefault((what, connections), []).append(wrk(url, connections, args.seconds, headers=headers))
            rss = {"hello": peak_rss_mib(hello.pid), "kiosk": peak_rss_mib(kiosk.pid)}
            if args.compare:
                rss["compare"] = peak_rss_mib(compared.pid)

    rows = []
    print(f"machine: {machine()}")
    print(
        f"load: wrk (≤2 threads), {args.seconds} s per row, {args.repeat} repetitions alternating hello-world and the kiosk; "
        f"servers: waitress, {THREADS} threads\nfigures: median (range) over the repetitions; ratio = req/s / hello-world's in the same repetition\n"
    )
    print(HEADER)
    for connections in args.connections:
        for what in ("hello", *targets):
            row = summarise(samples[(what, connections)], samples[("hello", connections)])
            name, label = ("hello-world", "/") if what == "hello" else ("kiosk", what)
            process = "hello" if what == "hello" else ("compare" if what.endswith("]") else "kiosk")
            rows.append({"server": name, "what": label, "connections": connections, **row, "rss_mib": rss[process]})
            print(format_row(name, label, connections, row, rows[-1]["rss_mib"]))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "foundation.json").write_text(
        json.dumps(
            {"machine": machine(), "seconds": args.seconds, "repeat": args.repeat, "rows": rows, "samples": {f"{k[0]}@{k[1]}": v for k, v in samples.items()}},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
