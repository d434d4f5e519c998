"""Call authorisation throughput and latency over HTTP: ``POST /api/v1/calls/authorize`` on
loopback against ``tarifa serve``, on SQLite and on PostgreSQL.

    .venv/bin/python bench/authorize.py                      # both databases, 2 and 4 workers, 30 s each
    .venv/bin/python bench/authorize.py --seconds 10 --workers 4 --only pg --pg postgres://postgres@127.0.0.1:55433/postgres
    .venv/bin/python bench/authorize.py --profile 3000       # also: where one worker's time goes (cProfile)

The world, loaded into a fresh database per kind: 2,000 customers (US, postpaid, 1,000,000 of
credit and as much paid in, no practical call/CPS limit), each with 5 accounts of one SIP
device (10,000 accounts); a 60,000-prefix selling tariff derived from the world deck; 3 vendors
each with a 60,000-prefix destination set (60/70/80 % of the selling price, so no loss route);
one least-cost routing group with the 3 vendors' connections, offered for domestic,
international and toll-free calls. Balances and limits are far above what a 30-s run uses, so
the benchmark measures authorisations, not refusals; calls are not ended (the reservation
tables are emptied between runs instead).

Load: wrk (Debian package ``wrk``, installed with apt-get when missing and allowed) with
``bench/authorize.lua``: every request a unique call id, a random account of the 10,000 and a
random number of 20,000 (60 % US, 30 % international, 10 % toll-free). When wrk cannot be had
an asyncio client of the standard library does the same (it needs CPU of its own, so its
numbers are lower). Each server configuration is warmed up in 3-s rounds (one connection per
worker, then the highest measured concurrency) until no request waits a second and two
consecutive rounds agree within 10 % -- every worker has built its snapshot and loaded the
240,000 rates, which takes 1.5-5 minutes here -- then measured for ``--seconds`` at each
connection count.

Options: --seconds (default 30), --workers (default 2,4), --connections (default: workers,
2 x workers, 4 x workers: one request per process, one per server thread, two per server
thread), --warmup (most seconds of warm-up, 300), --only sqlite|pg, --pg URL of a server where
a database may be created (default: a throwaway cluster started with scripts/postgres.sh on a
free port), --client auto|wrk|python, --accounts, --prefixes, --profile N (in one process:
time N authorisations through Django's WSGI handler, by phase, with their SQL and a cProfile
top list), --threads N (threads per server worker, TARIFA_THREADS; default tarifa serve's 2),
--keep (keep the temporary directory).

Each row reports authorisations/s, latency percentiles, the share of answers that allowed the
call, the reservations held (a check: requests answered plus those in flight at the end), and
the CPU time per authorisation of the app processes, of PostgreSQL (the cluster under test only:
its server process and children, when it runs on this machine) and of the whole machine
(client, kernel and anything else running included): on 2 cores, 2,000 authorisations/s needs at most 1 ms of machine
CPU per authorisation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import new_sqlite

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "authorize.lua"
THREADS_PER_WORKER = 2  # tarifa serve: TARIFA_THREADS default
TARGET_RATE, TARGET_P99_MS = 2000, 10.0


# --- the child: runs inside Django on the database under test ----------------------------------------


def _django() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
    import django

    django.setup()


def _deck(prefixes: int) -> list[tuple[str, str, str, int, int]]:
    """(prefix, destination, price per minute, interval_1, interval_n): the world deck, then
    longer prefixes under its destinations (1-3 more digits) up to ``prefixes`` rows."""
    from decimal import Decimal

    from tarifa.core import worlddeck

    rng = random.Random(20260501)
    base = worlddeck.world_destinations()
    rows: dict[str, tuple[str, str, str, int, int]] = {}
    for d in base:
        p = worlddeck.price_for(d)
        rows[d.prefix] = (
            d.prefix,
            d.name[:100],
            str(max(p["price_1"], Decimal("0.0010"))),
            p["interval_1"],
            p["interval_n"],
        )
    parents = [d for d in base if len(d.prefix) <= 8]
    while len(rows) < prefixes:
        d = rng.choice(parents)
        extra = rng.randint(1, 3)
        prefix = d.prefix + str(rng.randrange(10**extra)).zfill(extra)
        if prefix in rows:
            continue
        parent = rows[d.prefix]
        factor = Decimal(rng.randint(85, 125)) / 100
        price = (Decimal(parent[2]) * factor).quantize(Decimal("0.0001"))
        rows[prefix] = (
            prefix,
            f"{d.name[:80]} {prefix[len(d.prefix) :]}",
            str(max(price, Decimal("0.0010"))),
            parent[3],
            parent[4],
        )
    return sorted(rows.values())


def _csv(deck: list[tuple[str, str, str, int, int]], factor: str | None = None) -> bytes:
    from decimal import Decimal

    lines = ["prefix,destination,price_1,price_n,interval_1,interval_n"]
    for prefix, name, price, i1, i_n in deck:
        if factor is not None:
            price = str((Decimal(price) * Decimal(factor)).quantize(Decimal("0.000001")))
        name = name.replace(",", " ").replace('"', "")
        lines.append(f"{prefix},{name},{price},{price},{i1},{i_n}")
    return ("\n".join(lines) + "\n").encode()


def _numbers(deck: list[tuple[str, str, str, int, int]], count: int) -> list[str]:
    """60 % US (domestic), 30 % international under a deck prefix, 10 % US toll-free."""
    rng = random.Random(7)
    foreign = [row[0] for row in deck if not row[0].startswith("1")]
    out = []
    for n in range(count):
        kind = n % 10
        if kind < 6:
            out.append(f"1{rng.randint(201, 989)}{rng.randint(2, 9)}{rng.randrange(10**6):06d}")
        elif kind < 9:
            prefix = rng.choice(foreign)
            length = max(len(prefix) + 4, rng.randint(10, 12))
            rest = length - len(prefix)
            out.append(prefix + str(rng.randrange(10**rest)).zfill(rest))
        else:
            out.append(
                f"1{rng.choice(('800', '833', '844', '855', '866', '877', '888'))}"
                f"{rng.randint(2, 9)}{rng.randrange(10**6):06d}"
            )
    return out


def child_load(accounts: int, prefixes: int, numbers_path: str) -> None:
    from decimal import Decimal

    from django.db import connection, transaction

    from tarifa.api.models import ApiToken
    from tarifa.billing import ledger
    from tarifa.customers.models import Account, Customer, SipDevice
    from tarifa.rating.decks import import_file
    from tarifa.rating.models import Tariff
    from tarifa.routing.models import (
        Connection,
        DestinationSet,
        Pop,
        RouteOffer,
        RoutingEntry,
        RoutingGroup,
        Vendor,
    )

    started = time.perf_counter()
    deck = _deck(prefixes)
    tariff = Tariff.objects.create(name="World sell")
    import_file(tariff, _csv(deck), "sell.csv")
    group = RoutingGroup.objects.create(name="Value", policy="least_cost")
    for n, (name, factor) in enumerate((("Alpha", "0.6"), ("Bravo", "0.7"), ("Charlie", "0.8"))):
        vendor = Vendor.objects.create(name=name)
        conn = Connection.objects.create(vendor=vendor, name=name.lower(), host=f"sbc.{name.lower()}.example")
        dset = DestinationSet.objects.create(name=f"{name} A-Z", vendor=vendor)
        import_file(dset, _csv(deck, factor), f"{name}.csv")
        RoutingEntry.objects.create(group=group, connection=conn, destination_set=dset, priority=n)
    for dclass in ("domestic", "international", "tollfree"):
        RouteOffer.objects.create(destination_class=dclass, choice="value", routing_group=group)
    loaded_rates = time.perf_counter() - started

    operator = Customer.objects.create(
        kind="operator",
        name="Op",
        company="Operator",
        web_username="op",
        tariff=tariff,
        email="o@o.example",
        phone="+12015550123",
        country="US",
    )
    n_customers = max(1, accounts // 5)
    big = 1_000_000
    customers = Customer.objects.bulk_create(
        [
            Customer(
                parent=operator,
                name=f"C{n}",
                company=f"Customer {n}",
                web_username=f"bench{n}",
                tariff=tariff,
                account_code=f"C{n:07d}",
                path=f"{operator.path}C{n:07d}/",
                email="c@c.example",
                phone="+12015550123",
                country="US",
                billing_type="postpaid",
                credit_limit=Decimal(big),
                max_call_sessions=big,
                calls_per_second=big,
                max_call_duration=3600,
            )
            for n in range(n_customers)
        ],
        batch_size=2000,
    )
    made = Account.objects.bulk_create(
        [
            Account(
                customer=customers[n % n_customers],
                name=f"a{n}",
                account_code=f"A{n:07d}",
                dialing_mode="e164",
                allow_international=True,
                allow_premium_rate=True,
            )
            for n in range(accounts)
        ],
        batch_size=2000,
    )
    SipDevice.objects.bulk_create(
        [SipDevice(account=a, login=f"b{n}", secret="s") for n, a in enumerate(made)], batch_size=2000
    )
    with transaction.atomic():
        ledger.post(
            [
                ledger.Posting(customer_id=c.pk, amount=Decimal(big), kind="payment", reference=f"fund-{c.pk}")
                for c in customers
            ]
        )
    pop, _ = Pop.objects.get_or_create(name="bench-switch")
    _token, raw = ApiToken.issue("bench", switch=pop)
    Path(numbers_path).write_text("\n".join(_numbers(deck, 20_000)) + "\n")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    print(
        "LOADED "
        + json.dumps(
            {
                "token": raw,
                "vendor": connection.vendor,
                "customers": n_customers,
                "accounts": accounts,
                "prefixes": len(deck),
                "rates_seconds": round(loaded_rates, 1),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


def _tables() -> list[str]:
    from tarifa.calls.models import CallRate, Refusal, Reservation

    return [m._meta.db_table for m in (Reservation, CallRate, Refusal)]


def child_reset() -> None:
    """Empty the per-call state between runs (reservations, CPS counters, refusal counts)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in _tables():
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")
        if connection.vendor == "postgresql":
            for table in _tables():
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")
            # Flush what loading and the runs before left dirty, as in a database in service:
            # otherwise the checkpoint of a freshly bulk-loaded database lands in the measurement.
            try:
                cursor.execute("CHECKPOINT")
            except Exception as exc:  # noqa: BLE001 - needs superuser or pg_checkpoint: measure without it
                print(f"(no CHECKPOINT before the run: {exc})", file=sys.stderr)
    print("RESET {}")


def child_stats() -> None:
    from django.db.models import Sum

    from tarifa.calls.models import Refusal, Reservation

    refusals = {r["reason"]: r["n"] for r in Refusal.objects.values("reason").annotate(n=Sum("count"))}
    print("STATS " + json.dumps({"reservations": Reservation.objects.count(), "refusals": refusals}))


def child_profile(count: int, numbers_path: str, accounts: int) -> None:
    """Where one worker's time goes: ``count`` authorisations through Django's full request
    handling (middleware, auth, ninja, the service) in this process, one thread, no HTTP server.

    Prints the time per request without any instrumentation, then a breakdown by phase (timers
    around the service's functions and around every SQL statement), the SQL of one request and
    the top functions of a cProfile run."""
    import cProfile
    import functools
    import io
    import pstats

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tarifa.api import switch_endpoints
    from tarifa.api.models import ApiToken
    from tarifa.calls import authorize, cache, storage
    from tarifa.routing.models import Pop

    _t, raw = ApiToken.issue("bench-profile", switch=Pop.objects.get(name="bench-switch"))
    numbers = Path(numbers_path).read_text().split()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_HOST="127.0.0.1")
    rng = random.Random(3)

    def call(tag: str, n: int) -> bool:
        body = {"call_id": f"{tag}-{n}", "callee": rng.choice(numbers), "sip_user": f"b{rng.randrange(accounts)}"}
        response = client.post("/api/v1/calls/authorize", body, content_type="application/json")
        return response.status_code == 200 and response.json()["allowed"]

    started = time.perf_counter()
    call("cold", 0)
    cold = time.perf_counter() - started
    for n in range(300):
        call("warm", n)
    started = time.perf_counter()
    allowed = sum(call("plain", n) for n in range(count))
    plain = (time.perf_counter() - started) / count
    print(f"PROFILE first request (builds the snapshot, loads 4 x 60,000 rates): {cold:.2f} s")
    print(
        f"PROFILE {count} warm requests in one thread: {plain * 1000:.2f} ms each = {1 / plain:.0f}/s per core "
        f"(allowed {allowed}/{count}); the test client skips HTTP parsing and the server"
    )

    # Phases: timers around the service's steps and around each SQL statement.
    spent: dict[str, float] = {}
    calls: dict[str, int] = {}

    def timed(label: str, fn):  # type: ignore[no-untyped-def]
        @functools.wraps(fn)
        def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t0
                calls[label] = calls.get(label, 0) + 1

        return wrapper

    def sql_timer(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent["  SQL round trips (inside the phases above)"] = (
                spent.get("  SQL round trips (inside the phases above)", 0.0) + time.perf_counter() - t0
            )
            calls["  SQL round trips (inside the phases above)"] = (
                calls.get("  SQL round trips (inside the phases above)", 0) + 1
            )

    patches = [
        (switch_endpoints, "switch_identity", "token check (cached switch identity)"),
        (authorize, "authorize_call", "authorize_call (whole service)"),
        (cache, "snapshot", "  snapshot() version check"),
        (authorize, "_plan", "  _plan (identify, classify, rate, routes)"),
        (authorize, "_decide_in_one_trip", "  one trip (tarifa_call_authorize + judge)"),
        (storage.PostgresStore, "one_trip", "    store.one_trip (the statement)"),
        (authorize, "_decide_in_transaction", "  transaction body"),
        (storage.PostgresStore, "read", "    store.read (lock + state)"),
        (storage.PostgresStore, "reserve", "    store.reserve (reservation + CPS count)"),
        (authorize, "_lock_and_read", "    _lock_and_read (lock + reservations + CPS)"),
        (authorize, "_lock_balance", "    _lock_balance (SELECT ... FOR UPDATE)"),
        (authorize, "_state", "    _state (reservation sums)"),
        (authorize, "_cps", "    _cps reads"),
        (authorize, "_usable_routes", "    _usable_routes"),
        (authorize, "_reserve", "    _reserve (reservation + CPS count)"),
        (authorize, "_count_cps", "    _count_cps (upsert)"),
        (authorize.Reservation.objects, "create", "    Reservation.objects.create"),
        (authorize, "count_refusal", "  count_refusal"),
        (authorize, "plan", "  plan (identify, classify, rate, routes)"),
        (authorize, "judge", "    judge (limits, funds, routes)"),
    ]
    # The service changes: time the steps it has today.
    patches = [(owner, name, label) for owner, name, label in patches if hasattr(owner, name)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _label in patches]
    for owner, name, label in patches:
        setattr(owner, name, timed(label, getattr(owner, name)))
    try:
        with connection.execute_wrapper(sql_timer):
            started = time.perf_counter()
            for n in range(count):
                call("phase", n)
            total = time.perf_counter() - started
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    print(f"PROFILE breakdown per request ({total / count * 1000:.2f} ms with timers):")
    for label in [label for _o, _n, label in patches] + ["  SQL round trips (inside the phases above)"]:
        if label in spent:
            print(f"    {label:<55} {spent[label] / count * 1000:7.3f} ms  ({calls[label] / count:.1f} calls)")
    inside = spent.get("token check (cached switch identity)", 0) + spent.get("authorize_call (whole service)", 0)
    print(
        f"    {'rest: middleware (test client), JSON + validation, response':<55} "
        f"{(total - inside) / count * 1000:7.3f} ms"
    )

    with CaptureQueriesContext(connection) as queries:
        call("sql", 0)
    print(f"PROFILE SQL of one allowed request ({len(queries.captured_queries)} statements):")
    for q in queries.captured_queries:
        print(f"    {q['time']:>6}s  {q['sql'][:150]}")

    profile = cProfile.Profile()
    profile.enable()
    for n in range(count):
        call("prof", n)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    print("PROFILE cProfile, by own time:")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def child_main(argv: list[str]) -> None:
    _django()
    what = argv[0]
    if what == "load":
        child_load(int(argv[1]), int(argv[2]), argv[3])
    elif what == "reset":
        child_reset()
    elif what == "stats":
        child_stats()
    elif what == "profile":
        child_profile(int(argv[1]), argv[2], int(argv[3]))


# --- the driver -------------------------------------------------------------------------------------


def _env(url: str, var: str, threads: int = 0) -> dict:
    env = dict(
        os.environ,
        TARIFA_DATABASE_URL=url,
        TARIFA_VAR_DIR=var,
        DJANGO_SETTINGS_MODULE="tarifa.settings",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p),
    )
    if threads:
        env["TARIFA_THREADS"] = str(threads)
    return env


def _child(env: dict, *args: str, tag: str, timeout: int = 1800) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_child", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench child {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(tag + " ") and line[len(tag) + 1 :].startswith("{"):
            return json.loads(line[len(tag) + 1 :]), done.stdout
    return {}, done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _find_wrk(allow_install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not allow_install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("wrk is not installed (apt-get install wrk); using the Python client", file=sys.stderr)
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("installing wrk (Debian package) ...", file=sys.stderr)
    for update in (False, True):
        if update:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode == 0 and shutil.which("wrk"):
            return shutil.which("wrk")
    print("could not install wrk; using the Python client", file=sys.stderr)
    return None


class Server:
    def __init__(self, env: dict, workers: int, log: Path) -> None:
        self.port = _free_port()
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tarifa.cli", "serve", "--port", str(self.port), "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"tarifa serve exited ({self.proc.returncode}); see {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("tarifa serve did not listen within 60 s")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def _run_wrk(
    wrk: str, port: int, token: str, numbers: Path, accounts: int, connections: int, seconds: float, tag: str
) -> dict:
    args = [
        wrk,
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        token,
        str(numbers),
        str(accounts),
        tag,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            result["seconds"] = result.pop("duration_us") / 1e6
            result["client_cpu"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            return result
    raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


async def _python_client(
    port: int, token: str, numbers: list[str], accounts: int, connections: int, seconds: float, tag: str
) -> dict:
    """What the Lua script does, with asyncio streams and HTTP/1.1 keep-alive (standard library only)."""
    latencies: list[float] = []
    counts = {"allowed": 0, "refused": 0, "non_200": 0, "socket_errors": 0}
    reasons: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    rng = random.Random()

    async def worker(w: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        try:
            while time.perf_counter() < deadline:
                n += 1
                body = json.dumps(
                    {
                        "call_id": f"{tag}-{w}-{n}",
                        "callee": rng.choice(numbers),
                        "sip_user": f"b{rng.randrange(accounts)}",
                    }
                ).encode()
                head = (
                    f"POST /api/v1/calls/authorize HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(head + body)
                status_line = await reader.readline()
                length, close = 0, False
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and "close" in value.lower():
                        close = True
                payload = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if b" 200 " not in status_line:
                    counts["non_200"] += 1
                elif b'"allowed": true' in payload or b'"allowed":true' in payload:
                    counts["allowed"] += 1
                else:
                    counts["refused"] += 1
                    reason = json.loads(payload).get("reason", "?")
                    reasons[reason] = reasons.get(reason, 0) + 1
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except (OSError, asyncio.IncompleteReadError):
            counts["socket_errors"] += 1
        finally:
            writer.close()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(w) for w in range(connections)))
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    latencies.sort()

    def pct(p: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1e6) if latencies else 0

    return {
        "requests": len(latencies),
        "seconds": took,
        "client_cpu": cpu,
        **counts,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "p999_us": pct(99.9),
        "max_us": pct(100),
        "mean_us": statistics.fmean(latencies) * 1e6 if latencies else 0,
        "reasons": reasons,
    }


def _drive(
    wrk: str | None, port: int, token: str, numbers: Path, accounts: int, connections: int, seconds: float, tag: str
) -> dict:
    if wrk:
        result = _run_wrk(wrk, port, token, numbers, accounts, connections, seconds, tag)
    else:
        result = asyncio.run(
            _python_client(port, token, numbers.read_text().split(), accounts, connections, seconds, tag)
        )
    result["rate"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
    return result


def _warm_up(
    wrk: str | None, port: int, token: str, numbers: Path, accounts: int, concurrency: list[int], limit: float
) -> tuple[int, float]:
    """3-s rounds until no request waits a second (every worker has built its snapshot and loaded
    the 240,000 rates) and two consecutive rounds agree within 10 %: first with one connection
    per worker (so that few threads of a worker load the same tables at once), then at the
    highest measured concurrency."""
    started = time.monotonic()
    rounds = 0
    for connections in (concurrency[0], concurrency[-1]):
        rates: list[float] = []
        while time.monotonic() - started < limit:
            rounds += 1
            r = _drive(wrk, port, token, numbers, accounts, connections, 3, f"warm{rounds}-{uuid.uuid4().hex[:6]}")
            rates.append(r["rate"] if r["max_us"] < 1_000_000 and not r["socket_errors"] else 0.0)
            if len(rates) >= 2 and rates[-2] > 0 and abs(rates[-1] - rates[-2]) / rates[-2] < 0.10:
                break
    return rounds, time.monotonic() - started


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (and their reaped children), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                head, rest = (entry / "stat").read_text().rsplit(")", 1)
                out.append((int(entry.name), int(rest.split()[1]), head.split("(", 1)[1]))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _postmaster(url: str) -> int | None:
    """The process id of the PostgreSQL server at ``url`` when it runs on this machine (the parent
    of a backend), so that the CPU of other clusters on the machine is not counted; else None."""
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        parent = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except Exception:  # noqa: BLE001 - best effort: no server process on this machine, count none
        return None
    return parent if Path(f"/proc/{parent}").exists() else None


def _cpu_split(server_pid: int, postmaster: int | None = None) -> dict[str, float]:
    procs = _processes()
    app = [server_pid] + [pid for pid, ppid, _name in procs if ppid == server_pid]
    if postmaster is not None:  # this cluster only: the postmaster and its children (backends, writers)
        pg = [postmaster] + [pid for pid, ppid, _name in procs if ppid == postmaster]
    else:
        pg = [pid for pid, _ppid, name in procs if name == "postgres"]
    return {"app": _cpu_seconds(app), "postgres": _cpu_seconds(pg), "total": _total_cpu()}


def _total_cpu() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for n, v in enumerate(fields) if n not in (3, 4))  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except OSError:
        mem = 0
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _pg_cluster(var: Path) -> tuple[str, Path]:
    port = _free_port()
    where = Path(tempfile.mkdtemp(prefix="tarifa-bench-pg-"))
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), "start", str(where), str(port)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"could not start PostgreSQL: {done.stderr}")
    return f"postgres://postgres@127.0.0.1:{port}/postgres", where


def _pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        return admin.execute("SHOW server_version").fetchone()[0]


def bench_database(kind: str, url: str, args: argparse.Namespace, var: Path, wrk: str | None) -> list[dict]:
    env = _env(url, str(var), args.threads)
    postmaster = _postmaster(url) if url.startswith("postgres") else None
    migrated = subprocess.run(
        [sys.executable, "-m", "tarifa.cli", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if migrated.returncode != 0:
        raise SystemExit(migrated.stderr)
    numbers = var / f"numbers-{kind}.txt"
    world, _out = _child(env, "load", str(args.accounts), str(args.prefixes), str(numbers), tag="LOADED")
    print(
        f"[{kind}] world loaded in {world['seconds']} s (rates {world['rates_seconds']} s): "
        f"{world['customers']:,} customers, {world['accounts']:,} accounts with a SIP device, "
        f"{world['prefixes']:,}-prefix tariff + 3 x {world['prefixes']:,}-prefix destination sets",
        flush=True,
    )
    if args.profile:
        _stats, out = _child(env, "profile", str(args.profile), str(numbers), str(args.accounts), tag="PROFILE")
        print(f"[{kind}] in-process profile of one worker's work:")
        print(out)
        _child(env, "reset", tag="RESET")
    results = []
    for workers in args.workers:
        server = Server(env, workers, var / f"serve-{kind}-{workers}.log")
        try:
            threads = args.threads or THREADS_PER_WORKER
            concurrency = args.connections or [workers, threads * workers, 2 * threads * workers]
            rounds, warm = _warm_up(wrk, server.port, world["token"], numbers, args.accounts, concurrency, args.warmup)
            print(f"[{kind}] {workers} workers warm after {warm:.0f} s ({rounds} rounds of 3 s)", flush=True)
            for connections in concurrency:
                _child(env, "reset", tag="RESET")
                before = _cpu_split(server.proc.pid, postmaster)
                r = _drive(
                    wrk,
                    server.port,
                    world["token"],
                    numbers,
                    args.accounts,
                    connections,
                    args.seconds,
                    f"run{workers}x{connections}-{uuid.uuid4().hex[:6]}",
                )
                after = _cpu_split(server.proc.pid, postmaster)
                stats, _out = _child(env, "stats", tag="STATS")
                done = max(1, r["requests"])
                r.update(
                    db=kind,
                    workers=workers,
                    connections=connections,
                    warmup_rounds=rounds,
                    warmup_seconds=warm,
                    reservations=stats.get("reservations"),
                    db_refusals=stats.get("refusals"),
                    cpu_ms={
                        **{k: (after[k] - before[k]) * 1000 / done for k in after},
                        "client": r["client_cpu"] * 1000 / done,
                    },
                )
                results.append(r)
                _print_row(r)
        finally:
            server.stop()
        _child(env, "reset", tag="RESET")
    return results


HEADER = (
    f"{'database':<10} {'workers':>7} {'conns':>5} {'auth/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
    f"{'p99.9 ms':>8} {'allowed':>8} {'requests':>9} {'reserved':>9} {'errors':>6}  "
    f"CPU ms per authorisation: app / postgres / client / machine"
)


def _print_row(r: dict) -> None:
    answered = r["allowed"] + r["refused"]
    ratio = 100.0 * r["allowed"] / answered if answered else 0.0
    print(
        f"{r['db']:<10} {r['workers']:>7} {r['connections']:>5} {r['rate']:>8.0f} {r['p50_us'] / 1000:>7.2f} "
        f"{r['p90_us'] / 1000:>7.2f} {r['p99_us'] / 1000:>7.2f} {r['p999_us'] / 1000:>8.2f} {ratio:>7.2f}% "
        f"{r['requests']:>9,} {r['reservations']:>9,} {r['non_200'] + r['socket_errors']:>6}  "
        f"{r['cpu_ms']['app']:5.2f} / {r['cpu_ms']['postgres']:4.2f} / {r['cpu_ms']['client']:4.2f} / "
        f"{r['cpu_ms']['total']:5.2f}" + (f"   refusals: {r['reasons']}" if r["reasons"] else ""),
        flush=True,
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per configuration (30)")
    parser.add_argument("--workers", default="2,4", help="comma-separated worker counts to try (2,4)")
    parser.add_argument(
        "--connections",
        default="",
        help="comma-separated client connection counts (default: workers, 2 x workers, 4 x workers: "
        "one request per process, one per server thread, two per server thread)",
    )
    parser.add_argument("--warmup", type=float, default=300.0, help="at most this many seconds of warm-up (300)")
    parser.add_argument("--only", choices=("sqlite", "pg"), help="one database kind only")
    parser.add_argument(
        "--pg",
        default=os.environ.get("TARIFA_BENCH_PG", ""),
        help="postgres:// URL of a server where a database may be created "
        "(default: a throwaway cluster on a free port)",
    )
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--prefixes", type=int, default=60_000)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile N in-process authorisations")
    parser.add_argument(
        "--threads", type=int, default=0, help="threads per server worker (TARIFA_THREADS; default: tarifa serve's, 2)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",") if w]
    args.connections = [int(c) for c in args.connections.split(",") if c]

    var = Path(tempfile.mkdtemp(prefix="tarifa-bench-auth-"))
    wrk = None if args.client == "python" else _find_wrk(allow_install=True)
    if args.client == "wrk" and not wrk:
        raise SystemExit("wrk is not available")
    wrk_version = ""
    if wrk:
        done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        wrk_version = (done.stdout or done.stderr).split("[")[0].strip()
    print(
        f"authorize bench: {args.seconds:g} s per configuration, workers {args.workers}, "
        f"{args.threads or THREADS_PER_WORKER} threads each, client "
        f"{wrk_version or 'python asyncio (wrk unavailable)'}"
    )
    print(f"machine: {_machine()}", flush=True)
    results: list[dict] = []
    cluster = None
    try:
        if args.only != "pg":
            results += bench_database("sqlite", new_sqlite(f"{var}/bench.sqlite3"), args, var, wrk)
        if args.only != "sqlite":
            import psycopg

            admin_url = args.pg
            if not admin_url:
                admin_url, cluster = _pg_cluster(var)
            print(
                f"PostgreSQL {_pg_version(admin_url)} at {admin_url.rsplit('@', 1)[-1].rsplit('/', 1)[0]}"
                + (" (throwaway cluster: fsync off)" if cluster else ""),
                flush=True,
            )
            name = f"tarifa_bench_auth_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                results += bench_database("postgresql", admin_url.rsplit("/", 1)[0] + "/" + name, args, var, wrk)
            finally:
                with psycopg.connect(admin_url, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        if cluster is not None:
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", str(cluster)], capture_output=True, check=False
            )
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
        else:
            print(f"kept {var}")

    print()
    print(HEADER)
    for r in results:
        _print_row(r)
    pg = [r for r in results if r["db"] == "postgresql"]
    if pg:
        fast = [r for r in pg if r["p99_us"] <= TARGET_P99_MS * 1000]
        best = max(fast or pg, key=lambda r: r["rate"])
        met = best["rate"] >= TARGET_RATE and best["p99_us"] <= TARGET_P99_MS * 1000
        print(
            f"target on PostgreSQL (>= {TARGET_RATE:,} authorisations/s with p99 <= {TARGET_P99_MS:g} ms): "
            f"{'MET' if met else 'NOT MET'} (best: {best['rate']:.0f}/s, p99 {best['p99_us'] / 1000:.2f} ms, "
            f"{best['workers']} workers, {best['connections']} connections)"
        )
    low = [r for r in results if r["allowed"] < 0.99 * max(1, r["allowed"] + r["refused"])]
    if low:
        print("WARNING: fewer than 99 % of the answers allowed the call; the numbers measure refusals")


if __name__ == "__main__":
    main()
