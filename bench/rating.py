"""Rating throughput: core fast path, ``tarifa rate`` end to end, SQL per call, reference.

Run from the repository root (see bench/README.md)::

    .venv/bin/python bench/rating.py                   # 1,000,000 CDRs, 60,000 prefixes
    .venv/bin/python bench/rating.py --cdrs 100000 --prefixes 5000   # a quick run

It generates a rate deck and a CDR file in a temporary directory, then measures, each in
its own process (so that peak memory is that part's own):

(a) core fast path: ``array_rating.rate_batch`` on in-memory int64 arrays (time of the call
    only; the deck is compiled and the CDRs loaded beforehand);
(b) ``tarifa rate`` end to end as a subprocess, CSV in and CSV out (wall time from
    process start to exit, interpreter start-up included);
(c) a per-call SQL longest-prefix query on SQLite, the way classic PHP billing systems
    rate (``WHERE ? LIKE prefix || '%' ORDER BY length(prefix) DESC LIMIT 1``), then the
    exact cost; far slower, so it runs on a sample;
(d) the reference path, ``rating.rate_call`` in a loop, on a sample.

Peak memory is the child's maximum resident set size (``wait4``). The costs of (c) and (d)
are compared with the output of (b) row by row; any difference is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECK_HEADER = (
    "prefix,destination,price_1,price_n,interval_1,interval_n,connect_fee,free_seconds,"
    "grace_period,post_call_surcharge,min_charge,effective_from,effective_to,period,forbidden"
)
INTERVALS = [(1, 1), (6, 6), (30, 6), (60, 60), (60, 1), (30, 30)]
DECIMALS = 4
ROUNDING = "half_up"


def _micro_text(units: int) -> str:
    """Integer micro-units as a decimal text, without float."""
    return f"{units // 10**6}.{units % 10**6:06d}"


def generate_deck(path: Path, prefixes: int, seed: int = 1) -> list[str]:
    """A deck of ``prefixes`` distinct prefixes of 1-9 digits; returns the prefixes."""
    rng = random.Random(seed)
    weights = [1, 2, 4, 8, 12, 16, 16, 12, 8]  # many 5-8 digit prefixes, few short ones
    chosen: set[str] = set()
    while len(chosen) < prefixes:
        length = rng.choices(range(1, 10), weights)[0]
        prefix = str(rng.randint(10 ** (length - 1), 10**length - 1))
        # Like the real numbering plan, only 1 and 7 are one-digit country codes; and no
        # prefix starts with 99, so that numbers there find no rate.
        if (length == 1 and prefix not in ("1", "7")) or prefix.startswith("99"):
            continue
        chosen.add(prefix)
    ordered = sorted(chosen)
    with open(path, "w", encoding="utf-8") as out:
        out.write(DECK_HEADER + "\n")
        for prefix in ordered:
            p1 = rng.randint(100, 500_000)  # 0.0001 .. 0.5 per minute, in micro-units
            pn = p1 if rng.random() < 0.8 else rng.randint(100, 500_000)
            i1, i_n = rng.choice(INTERVALS)
            fee = _micro_text(rng.randint(1, 50_000)) if rng.random() < 0.1 else "0"
            free = str(rng.choice([5, 10, 30])) if rng.random() < 0.02 else "0"
            grace = str(rng.choice([1, 3, 6])) if rng.random() < 0.05 else "0"
            surcharge = str(rng.choice([5, 10, "12.5"])) if rng.random() < 0.05 else "0"
            minimum = _micro_text(rng.randint(1_000, 100_000)) if rng.random() < 0.05 else "0"
            forbidden = "1" if rng.random() < 0.01 else "0"
            out.write(
                f"{prefix},Destination {prefix[:4]},{_micro_text(p1)},{_micro_text(pn)},{i1},{i_n},"
                f"{fee},{free},{grace},{surcharge},{minimum},,,,{forbidden}\n"
            )
    return ordered


def generate_cdrs(path: Path, count: int, prefixes: list[str], seed: int = 2) -> None:
    """``count`` CDRs: 8-15 digit numbers (90 % under a deck prefix), 0-3600 s, 30 days.

    Numbers are written plain (70 %), with ``+`` (20 %) or ``00`` (9.5 %); 0.5 % start
    with a single ``0`` (a national form, so ``invalid_number`` in e164 mode)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    deck_values = np.array([int(p) for p in prefixes], dtype=np.int64)
    deck_lengths = np.array([len(p) for p in prefixes], dtype=np.int64)
    pick = rng.integers(0, len(prefixes), count)
    plen = deck_lengths[pick]
    total = rng.integers(np.maximum(8, plen + 1), 16)  # 8..15 digits, longer than the prefix
    free = rng.random(count) < 0.1  # not under a chosen deck prefix; half start with 99: no_rate
    plen = np.where(free, 2, plen)
    head = np.where(free, np.where(rng.random(count) < 0.5, 99, rng.integers(10, 99, count)), deck_values[pick])
    tail_digits = total - plen
    tail = rng.integers(0, 10**tail_digits)
    numbers = head * 10**tail_digits + tail
    style = rng.integers(0, 10, count)
    invalid = rng.random(count) < 0.05  # of the last style: 0.5 % of all CDRs
    text = pl.Series(numbers).cast(pl.String)
    callee = pl.select(
        pl.when(pl.lit(pl.Series(style)) < 7)
        .then(pl.lit(text))
        .when(pl.lit(pl.Series(style)) < 9)
        .then(pl.lit("+") + pl.lit(text))
        .when(pl.lit(pl.Series(invalid)))
        .then(pl.lit("0") + pl.lit(text))  # national form: invalid
        .otherwise(pl.lit("00") + pl.lit(text))
    ).to_series()
    whole = rng.integers(0, 3601, count)
    fraction = np.where(rng.random(count) < 0.2, rng.integers(1, 1000, count), 0)
    duration = pl.select(
        pl.when(pl.lit(pl.Series(fraction)) > 0)
        .then(pl.lit(pl.Series(whole)).cast(pl.String) + "." + pl.lit(pl.Series(fraction)).cast(pl.String).str.zfill(3))
        .otherwise(pl.lit(pl.Series(whole)).cast(pl.String))
    ).to_series()
    start = np.datetime64("2026-01-01T00:00:00", "s").astype(np.int64)
    moments = pl.from_epoch(pl.Series(start + rng.integers(0, 30 * 86_400, count)), time_unit="s")
    connect = moments.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    frame = pl.DataFrame(
        {
            "call_id": pl.Series(np.arange(1, count + 1)).cast(pl.String).str.zfill(8),
            "caller": pl.Series(rng.integers(10**10, 10**11, count)).cast(pl.String),
            "callee": callee,
            "connect_time": connect,
            "duration": duration,
        }
    )
    frame.write_csv(path)


# ---------------------------------------------------------------------------------------
# Parts, each run in a child process: `bench/rating.py --part X --deck D --cdrs C`


def part_core(deck: Path, cdrs: Path, _sample: int) -> dict[str, object]:
    import tracemalloc
    from datetime import timedelta

    from tarifa.batchrate import fast_deck_for_window, load_cdrs, load_deck
    from tarifa.core.array_rating import rate_batch
    from tarifa.core.periods import EPOCH as _EPOCH

    rows, errors = load_deck(deck)
    assert not errors, errors[:5]
    batch = load_cdrs(cdrs)
    start = _EPOCH + timedelta(microseconds=int(batch.connect_us.min()))
    end = _EPOCH + timedelta(microseconds=int(batch.connect_us.max()) + 1)
    fast = fast_deck_for_window(rows, start, end)
    numbers, seconds = batch.numbers, batch.seconds
    rate_batch(fast, numbers[:1000], seconds[:1000], DECIMALS, ROUNDING)  # warm-up
    tracemalloc.start()
    began = time.perf_counter()
    result = rate_batch(fast, numbers, seconds, DECIMALS, ROUNDING)
    elapsed = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"rows": len(result), "seconds": elapsed, "traced_peak": peak}


def _sample_rows(cdrs: Path, sample: int) -> tuple[list[int], object]:
    import polars as pl

    frame = pl.read_csv(cdrs, infer_schema=False)
    step = max(1, len(frame) // sample)
    picked = list(range(0, len(frame), step))[:sample]
    return picked, frame[picked]


def part_sql(deck: Path, cdrs: Path, sample: int) -> dict[str, object]:
    import sqlite3
    from datetime import datetime

    from tarifa.batchrate import load_deck
    from tarifa.core.numbering import InvalidNumber, normalize
    from tarifa.core.rating import RateTerms, call_cost, duration_from_seconds

    rows, errors = load_deck(deck)
    assert not errors
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE rates (prefix TEXT PRIMARY KEY, destination TEXT, price_1 TEXT, price_n TEXT,"
        " interval_1 INTEGER, interval_n INTEGER, connect_fee TEXT, free_seconds INTEGER,"
        " grace_period INTEGER, post_call_surcharge TEXT, min_charge TEXT, forbidden INTEGER)"
    )
    db.executemany(
        "INSERT INTO rates VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                r.prefix,
                r.destination,
                str(r.price_1),
                str(r.price_n),
                r.interval_1,
                r.interval_n,
                str(r.connect_fee),
                r.free_seconds,
                r.grace_period,
                str(r.post_call_surcharge),
                str(r.min_charge),
                int(r.forbidden),
            )
            for r in rows
        ],
    )
    db.commit()
    picked, frame = _sample_rows(cdrs, sample)
    query = (
        "SELECT prefix, price_1, price_n, interval_1, interval_n, connect_fee, free_seconds,"
        " grace_period, post_call_surcharge, min_charge, forbidden FROM rates"
        " WHERE ? LIKE prefix || '%' ORDER BY length(prefix) DESC LIMIT 1"
    )
    costs: list[str] = []
    began = time.perf_counter()
    for callee, connect, duration in frame.select("callee", "connect_time", "duration").iter_rows():
        datetime.fromisoformat(connect)
        seconds = duration_from_seconds(duration)
        try:
            digits = normalize(callee, "e164")
        except InvalidNumber:
            costs.append("")
            continue
        found = db.execute(query, (digits,)).fetchone()
        if found is None or found[10]:
            costs.append("")
            continue
        terms = RateTerms(found[1], found[2], found[3], found[4], found[5], found[6], found[7], found[8], found[9])
        costs.append(str(call_cost(terms, seconds, DECIMALS, ROUNDING)))
    elapsed = time.perf_counter() - began
    return {"rows": len(costs), "seconds": elapsed, "picked": picked, "costs": costs}


def part_reference(deck: Path, cdrs: Path, sample: int) -> dict[str, object]:
    from datetime import datetime

    from tarifa.batchrate import load_deck
    from tarifa.core.rating import RateTable, rate_call

    rows, errors = load_deck(deck)
    assert not errors
    table = RateTable([r.entry() for r in rows])
    picked, frame = _sample_rows(cdrs, sample)
    calls = [
        (callee, datetime.fromisoformat(connect), duration)
        for callee, connect, duration in frame.select("callee", "connect_time", "duration").iter_rows()
    ]
    began = time.perf_counter()
    results = [rate_call(table, c, t, d, DECIMALS, ROUNDING, dialing_mode="e164") for c, t, d in calls]
    elapsed = time.perf_counter() - began
    costs = ["" if r.cost is None else str(r.cost) for r in results]
    return {"rows": len(results), "seconds": elapsed, "picked": picked, "costs": costs}


PARTS = {"core": part_core, "sql": part_sql, "reference": part_reference}


# ---------------------------------------------------------------------------------------
# Driver


def _run(args: list[str]) -> tuple[float, int, str, str, int]:
    """Run a child; (wall seconds, peak RSS bytes, stdout, stderr, exit code)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    began = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix all children).
    out_file, err_file = child.stdout, child.stderr
    assert out_file is not None and err_file is not None
    out, err = out_file.read(), err_file.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - began
    return elapsed, usage.ru_maxrss * 1024, out, err, child.returncode


def _part(name: str, deck: Path, cdrs: Path, sample: int) -> tuple[dict[str, object], int]:
    _elapsed, rss, out, err, code = _run(
        [
            sys.executable,
            __file__,
            "--part",
            name,
            "--deck-file",
            str(deck),
            "--cdr-file",
            str(cdrs),
            "--sample",
            str(sample),
        ]
    )
    if code:
        raise SystemExit(f"part {name} failed ({code}):\n{err}")
    return json.loads(out), rss


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cdrs", type=int, default=1_000_000, help="CDRs to generate (default 1,000,000)")
    parser.add_argument("--prefixes", type=int, default=60_000, help="deck prefixes (default 60,000)")
    parser.add_argument("--sql-sample", type=int, default=2_000, help="CDRs rated by the SQL path (default 2,000)")
    parser.add_argument("--ref-sample", type=int, default=100_000, help="CDRs rated by rate_call (default 100,000)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and print where")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--deck-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cdr-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(json.dumps(PARTS[args.part](args.deck_file, args.cdr_file, args.sample)))
        return

    sys.path.insert(0, str(ROOT / "src"))
    import polars as pl

    work = Path(tempfile.mkdtemp(prefix="tarifa-bench-"))
    deck, cdrs, rated = work / "deck.csv", work / "cdrs.csv", work / "rated.csv"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"polars {pl.__version__}, {platform.system()} {platform.release()}"
    )
    began = time.perf_counter()
    prefixes = generate_deck(deck, args.prefixes)
    generate_cdrs(cdrs, args.cdrs, prefixes)
    print(
        f"generated {args.prefixes:,} prefixes (1-9 digits) and {args.cdrs:,} CDRs "
        f"(8-15 digit numbers, 0-3600 s) in {time.perf_counter() - began:.1f} s "
        f"({cdrs.stat().st_size / 2**20:,.0f} MiB of CSV)"
    )
    print()

    core, core_rss = _part("core", deck, cdrs, 0)
    core_rate = core["rows"] / core["seconds"]  # type: ignore[operator]
    print(
        f"(a) core fast path, rate_batch on int64 arrays: {core['rows']:,} CDRs in {core['seconds']:.3f} s"
        f" = {core_rate:,.0f} CDR/s; tracemalloc peak of the call {_mib(core['traced_peak'])},"  # type: ignore[arg-type]
        f" process peak RSS {_mib(core_rss)} (includes loading deck and CDRs)"
    )

    command = [
        sys.executable,
        "-m",
        "tarifa.cli",
        "rate",
        "--deck",
        str(deck),
        "--cdrs",
        str(cdrs),
        "--out",
        str(rated),
        "--decimals",
        str(DECIMALS),
        "--rounding",
        ROUNDING,
    ]
    wall, e2e_rss, out, err, code = _run(command)
    if code:
        raise SystemExit(f"tarifa rate failed ({code}):\n{err}")
    e2e_rate = args.cdrs / wall
    print(
        f"(b) tarifa rate end to end (subprocess, CSV in, CSV out): {args.cdrs:,} CDRs in {wall:.2f} s wall"
        f" = {e2e_rate:,.0f} CDR/s; peak RSS {_mib(e2e_rss)}"
    )
    print(f"    its summary: {out.strip()}")

    sql, sql_rss = _part("sql", deck, cdrs, args.sql_sample)
    sql_rate = sql["rows"] / sql["seconds"]  # type: ignore[operator]
    print(
        f"(c) SQLite per-call LIKE longest-prefix query + exact cost, on a SAMPLE of {sql['rows']:,} CDRs:"
        f" {sql['seconds']:.2f} s = {sql_rate:,.0f} CDR/s; peak RSS {_mib(sql_rss)}"
    )

    ref, ref_rss = _part("reference", deck, cdrs, args.ref_sample)
    ref_rate = ref["rows"] / ref["seconds"]  # type: ignore[operator]
    print(
        f"(d) reference rate_call loop, on a sample of {ref['rows']:,} CDRs: {ref['seconds']:.2f} s"
        f" = {ref_rate:,.0f} CDR/s; peak RSS {_mib(ref_rss)}"
    )

    output = pl.read_csv(rated, infer_schema=False).get_column("cost").fill_null("").to_list()
    for name, part in (("SQL", sql), ("reference", ref)):
        mismatches = sum(1 for i, c in zip(part["picked"], part["costs"], strict=True) if output[i] != c)  # type: ignore[call-overload]
        print(f"    check: {name} costs vs tarifa rate output on {len(part['costs']):,} rows: {mismatches} differ")  # type: ignore[arg-type]
    print()
    print("ratios (CDR/s):")
    print(f"  (a) core / (b) end to end      {core_rate / e2e_rate:8.1f}x")
    print(f"  (b) end to end / (c) SQL       {e2e_rate / sql_rate:8.0f}x")
    print(f"  (a) core / (c) SQL             {core_rate / sql_rate:8.0f}x")
    print(f"  (b) end to end / (d) reference {e2e_rate / ref_rate:8.1f}x")
    print(f"  (d) reference / (c) SQL        {ref_rate / sql_rate:8.1f}x")
    target = "met" if e2e_rate >= 300_000 and e2e_rss < 2**30 else "NOT met"
    size = "" if (args.cdrs, args.prefixes) == (1_000_000, 60_000) else " (stated for 1,000,000 CDRs, 60,000 prefixes)"
    print(f"target >= 300,000 CDR/s end to end with peak memory < 1 GiB{size}: {target}")
    if args.keep:
        print(f"files kept in {work}")
    else:
        for path in (deck, cdrs, rated):
            path.unlink(missing_ok=True)
        work.rmdir()


if __name__ == "__main__":
    main()
