"""Catalogue benchmark over 100,000 books (issue 12).

1. Import throughput: a 100,000-row CSV (template headers, one copy per row) through
   `kiosk catalogue import`, and a CNMARC file (UTF-8, one 905 holding per record) into a second
   instance; records/s and the database size afterwards.
2. Search latency per query class at the service layer (kiosk.catalogue.search.search, in
   process) and over HTTP (GET /catalogue/search as htmx asks for it, one connection, against
   `kiosk serve` in its own process), with a plain `LIKE '%q%'` scan over the same table
   (title, authors, publisher, subjects; count + first page) measured in the same run as the
   baseline.
3. Peak RSS of the server process after the HTTP run, and its RSS after a staff edit of one
   book's title over HTTP (the edit needs pinyin: pypinyin's dictionaries must not end up in
   the server), with the edit's time.

    .venv/bin/python bench/catalogue.py [--books 100000] [--marc 20000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import csv
import http.cookiejar
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import BIN, free_port, machine, peak_rss_mib, prepare_instance, server

from tests.catalogue_data import generated_books

QUERY_CLASSES: dict[str, list[str]] = {
    "title 3+ chars": ["红楼梦", "长安的荔枝", "平凡的世界", "西湖春天", "城市故事"],
    "1-2 chars": ["红", "的", "中国", "三体", "杭州"],
    "pinyin initials": ["hlm", "cqsl", "sgyy", "pfdsj", "hz"],
    "pinyin full": ["hongloumeng", "santi", "xihu", "chuntian"],
    "ISBN": ["7-02-000220-X", "9787020002207", "９７８７０２０００２２０７", "978-799-000124-8"],
    "author / publisher": ["刘慈欣", "王安", "人民文学出版社", "中华书局"],
    "traditional / full-width": ["紅樓夢", "ＨＬＭ", "臺灣", "電影"],
    "no hit": ["宏楼梦", "zzzqqq", "不存在的书名"],
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def write_csv(path: Path, count: int) -> None:
    from kiosk.catalogue.importing import TEMPLATE_HEADERS

    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(TEMPLATE_HEADERS)
        for n, b in enumerate(generated_books(count, seed=11)):
            writer.writerow(
                [
                    b.title,
                    "",
                    b.authors,
                    b.publisher,
                    b.year,
                    b.isbn or "",
                    b.call_number,
                    b.subjects,
                    "",
                    f"BX{n:07d}",
                    f"{b.call_number[0]}-{n % 40 + 1:02d}-{n % 5 + 1}",
                ]
            )


def write_marc(path: Path, count: int) -> None:
    from pymarc import Field, Indicators, Leader, Record, Subfield

    from kiosk.catalogue.importing import marc_bytes

    with path.open("wb") as fh:
        for n, b in enumerate(generated_books(count, seed=13)):
            record = Record(leader=Leader("00000nam0 2200000   450 "))
            if b.isbn:
                record.add_field(Field(tag="010", indicators=Indicators(" ", " "), subfields=[Subfield("a", b.isbn)]))
            record.add_field(Field(tag="200", indicators=Indicators("1", " "), subfields=[Subfield("a", b.title), Subfield("f", b.authors)]))
            record.add_field(Field(tag="210", indicators=Indicators(" ", " "), subfields=[Subfield("c", b.publisher), Subfield("d", str(b.year))]))
            record.add_field(Field(tag="690", indicators=Indicators(" ", " "), subfields=[Subfield("a", b.call_number)]))
            record.add_field(Field(tag="701", indicators=Indicators(" ", "0"), subfields=[Subfield("a", b.authors)]))
            record.add_field(
                Field(
                    tag="905", indicators=Indicators(" ", " "), subfields=[Subfield("b", f"MX{n:07d}"), Subfield("c", "B-01-1"), Subfield("d", b.call_number)]
                )
            )
            fh.write(marc_bytes(record, "utf-8"))


def timed_import(instance: Path, file: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": str(instance)}
    started = time.perf_counter()
    result = subprocess.run([str(BIN / "kiosk"), "catalogue", "import", str(file), "--quiet"], env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, result.stdout.strip().splitlines()[-1]


def scan_query(connection, q: str) -> None:
    """The baseline: what a catalogue without an index does."""
    like = f"%{q}%"
    where = "title LIKE ? OR authors LIKE ? OR publisher LIKE ? OR subjects LIKE ? OR isbn LIKE ?"
    connection.execute(f"SELECT count(*) FROM book WHERE {where}", (like,) * 5).fetchone()
    connection.execute(f"SELECT id, title FROM book WHERE {where} ORDER BY id LIMIT 8", (like,) * 5).fetchall()


def current_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def enrol_bench_device(instance: Path) -> str:
    """The kiosk routes answer only an enrolled device: the HTTP run sends this one's cookie."""
    from kiosk import create_app
    from kiosk.devices.services import enrol_device
    from kiosk.extensions import db

    app = create_app({"INSTANCE_PATH": instance})
    with app.app_context():
        _, secret = enrol_device(db.session, "bench", actor=None)
        db.session.remove()
    return secret


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"')


def staff_edit(base: str, instance: Path, pid: int) -> dict:
    """Log in as the demo staff account and change one book's title (new pinyin): the edit's
    time, and the server's peak RSS after the login (werkzeug's scrypt takes ~32 MiB for a
    moment), so that what the edit adds is told apart."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def token(path: str) -> str:
        match = CSRF.search(opener.open(base + path, timeout=30).read().decode())
        assert match, path
        return match.group(1) or match.group(2)

    form = {"username": "demo-staff", "password": "kiosk-demo-staff", "csrf_token": token("/staff/login")}
    opener.open(base + "/staff/login", urllib.parse.urlencode(form).encode(), timeout=30).read()
    login_peak = peak_rss_mib(pid)
    with sqlite3.connect(instance / "kiosk.sqlite3") as raw:
        row = raw.execute("SELECT id, title, subtitle, authors, publisher, year, isbn, call_number, subjects, summary FROM book ORDER BY id LIMIT 1").fetchone()
    book_id, *values = row
    fields = dict(zip(("title", "subtitle", "authors", "publisher", "year", "isbn", "call_number", "subjects", "summary"), values))
    fields = {k: "" if v is None else str(v) for k, v in fields.items()} | {"title": "银行家的故事" + str(time.time_ns())[-4:]}
    path = f"/staff/catalogue/book/{book_id}"
    fields["csrf_token"] = token(path)
    started = time.perf_counter()
    with opener.open(base + path, urllib.parse.urlencode(fields).encode(), timeout=60) as response:
        page = response.read().decode()
    seconds = time.perf_counter() - started
    with sqlite3.connect(instance / "kiosk.sqlite3") as raw:
        stored = raw.execute("SELECT title, pinyin_initials FROM book WHERE id = ?", (book_id,)).fetchone()
    assert stored[0] == fields["title"] and stored[1].startswith("yhjdgs"), (stored, page[:300])
    return {"edit_seconds": seconds, "login_peak": login_peak}


def measure_service(instance: Path, rounds: int) -> dict:
    from kiosk import create_app
    from kiosk.catalogue import search as search_module
    from kiosk.catalogue.search import search
    from kiosk.extensions import db

    # Counts are cached per query until the index changes (kiosk.catalogue.search): the
    # figures are for a query the kiosk has not seen since the last write (cache emptied
    # before each), and "repeated" for the same query again (search-as-you-type, paging).
    clear = getattr(search_module, "clear_counts", lambda: None)

    app = create_app({"INSTANCE_PATH": instance})
    results = {}
    raw = sqlite3.connect(instance / "kiosk.sqlite3")
    with app.app_context():
        for name, queries in QUERY_CLASSES.items():
            ours, repeated, scans, totals = [], [], [], []
            for q in queries:  # warm
                search(db.session, q)
                scan_query(raw, q)
            for _ in range(rounds):
                for q in queries:
                    clear()
                    t = time.perf_counter()
                    result = search(db.session, q)
                    ours.append((time.perf_counter() - t) * 1000)
                    totals.append(result.total)
                    t = time.perf_counter()
                    search(db.session, q)
                    repeated.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    scan_query(raw, q)
                    scans.append((time.perf_counter() - t) * 1000)
            db.session.rollback()
            results[name] = {
                "p50": percentile(ours, 50),
                "p95": percentile(ours, 95),
                "repeated_p50": percentile(repeated, 50),
                "repeated_p95": percentile(repeated, 95),
                "scan_p50": percentile(scans, 50),
                "scan_p95": percentile(scans, 95),
                "hits": sorted(set(totals))[:1] + sorted(set(totals))[-1:],
            }
    raw.close()
    return results


def measure_http(instance: Path, rounds: int, device: str) -> tuple[dict, dict]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": str(instance)}
    results = {}
    with server([str(BIN / "kiosk"), "serve", "--port", str(port)], port, env, probe="/healthz") as process:
        base = f"http://127.0.0.1:{port}/catalogue/search?q="
        headers = {"HX-Request": "true", "HX-Target": "catalogue-results", "Cookie": f"kiosk_device={device}"}

        def get(q: str) -> None:
            request = urllib.request.Request(base + urllib.parse.quote(q), headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()

        for name, queries in QUERY_CLASSES.items():
            times = []
            for q in queries:
                get(q)
            for _ in range(rounds):
                for q in queries:
                    t = time.perf_counter()
                    get(q)
                    times.append((time.perf_counter() - t) * 1000)
            results[name] = {"p50": percentile(times, 50), "p95": percentile(times, 95)}
        rss = {"search_peak": peak_rss_mib(process.pid)}
        rss |= staff_edit(f"http://127.0.0.1:{port}", instance, process.pid)
        rss["after_edit"] = current_rss_mib(process.pid)
        rss["after_edit_peak"] = peak_rss_mib(process.pid)
    return results, rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--books", type=int, default=100_000)
    parser.add_argument("--marc", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="Build the instances in this folder and keep them (for profiling).")
    parser.add_argument("--search-only", type=Path, metavar="DIR", help="Measure search and RSS only, on the instance an earlier --keep DIR built.")
    args = parser.parse_args()
    report: dict = {"machine": machine(), "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        if args.search_only:
            instance = args.search_only / "instance"
        else:
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                tmp = str(args.keep)
            report |= build(Path(tmp), args.books, args.marc)
            instance = Path(tmp) / "instance"
        service = measure_service(instance, args.rounds)
        http, rss = measure_http(instance, args.rounds, enrol_bench_device(instance))
    report |= {"service": service, "http": http, "server_rss_mib": rss, "load_average_after": os.getloadavg()}
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / ("catalogue-search.json" if args.search_only else "catalogue.json")).write_text(json.dumps(report, ensure_ascii=False, indent=1))
    if not args.search_only:
        csv_seconds, marc_seconds = report["csv"]["seconds"], report["marc"]["seconds"]
        print(f"CSV import: {args.books} in {csv_seconds:.1f} s = {args.books / csv_seconds:.0f} records/s ({report['csv']['summary']})")
        print(f"CSV re-import: {report['csv_reimport']['seconds']:.1f} s ({report['csv_reimport']['summary']})")
        print(f"MARC import: {args.marc} in {marc_seconds:.1f} s = {args.marc / marc_seconds:.0f} records/s")
        print(f"Database: {report['db_mib']:.1f} MiB")
    print("Load average before / after: " + " / ".join(", ".join(f"{x:.2f}" for x in report[k]) for k in ("load_average", "load_average_after")))
    print(f"Server peak RSS after searching: {rss['search_peak']:.1f} MiB")
    print(
        f"Staff edit of a title over HTTP: {rss['edit_seconds'] * 1000:.0f} ms; server RSS after it {rss['after_edit']:.1f} MiB (peak {rss['after_edit_peak']:.1f}; {rss['login_peak']:.1f} after the login, before the edit)"
    )
    print("| class | service p50 | service p95 | repeated p50 / p95 | HTTP p50 | HTTP p95 | LIKE scan p50 | scan p95 | scan p50 / ours | hits |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in QUERY_CLASSES:
        s, h = service[name], http[name]
        ratio = s["scan_p50"] / s["p50"] if s["p50"] else float("inf")
        print(
            f"| {name} | {s['p50']:.2f} | {s['p95']:.2f} | {s['repeated_p50']:.2f} / {s['repeated_p95']:.2f} | {h['p50']:.1f} | {h['p95']:.1f} | {s['scan_p50']:.1f} | {s['scan_p95']:.1f} | {ratio:.0f}× | {s['hits']} |"
        )


def build(folder: Path, books: int, marc: int) -> dict:
    """Two instances (CSV, MARC) with the generated catalogue imported; import figures."""
    instance, marc_instance = folder / "instance", folder / "marc"
    for path in (instance, marc_instance):
        path.mkdir(parents=True, exist_ok=True)
        prepare_instance(path)
    csv_file, marc_file = folder / "books.csv", folder / "books.iso"
    write_csv(csv_file, books)
    write_marc(marc_file, marc)
    csv_seconds, csv_summary = timed_import(instance, csv_file)
    marc_seconds, marc_summary = timed_import(marc_instance, marc_file)
    reimport_seconds, reimport_summary = timed_import(instance, csv_file)
    db_file = instance / "kiosk.sqlite3"
    subprocess.run(["sqlite3", str(db_file), "PRAGMA wal_checkpoint(TRUNCATE);"], check=False, capture_output=True)
    return {
        "books": books,
        "csv": {"seconds": csv_seconds, "records_per_s": books / csv_seconds, "summary": csv_summary},
        "csv_reimport": {"seconds": reimport_seconds, "records_per_s": books / reimport_seconds, "summary": reimport_summary},
        "marc": {"records": marc, "seconds": marc_seconds, "records_per_s": marc / marc_seconds, "summary": marc_summary},
        "db_mib": db_file.stat().st_size / 1024 / 1024,
    }


if __name__ == "__main__":
    main()
