"""Call authorisation stays exact under real concurrency (PostgreSQL): two ``tarifa serve``
processes of two workers each, on two ports, answer bursts of simultaneous requests spread over
both. Limits of concurrent calls, prepaid funds and calls per second hold exactly, because each
decision is taken in one transaction that locks the customer's balance row.

The world (tests/e2e/authorize_world.py) has one customer per scenario, so the tests share one
fresh database and one pair of servers without sharing a limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.client import HTTPConnection
from pathlib import Path

import pytest

HERE = Path(__file__).parent
UK = "442079460958"
WORKERS = 2  # per server


@dataclass
class World:
    env: dict
    token: str
    ports: list[int]
    scenarios: dict
    logs: Path

    def answered_by(self, port: int) -> int:
        """Authorisations in the access log of the server on ``port``."""
        return (self.logs / f"access-{port}.log").read_text().count("POST /api/v1/calls/authorize")

    def reservations(self) -> dict:
        done = subprocess.run(
            [sys.executable, str(HERE / "authorize_world.py"), "reservations"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, path: str, token: str, body: dict | None = None) -> dict:
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body or {})
        conn.request(
            "POST", path, body=payload, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        )
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, (response.status, data[:500])
        return json.loads(data)
    finally:
        conn.close()


def _wait_healthy(port: int, server: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert server.poll() is None, f"server on port {port} exited with {server.returncode}"
        try:
            conn = HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"server on port {port} did not answer within the deadline")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[World]:
    """A fresh PostgreSQL database with the scenarios' world, served by two servers of two workers."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(
            "concurrent authorisations by several server processes are a PostgreSQL deployment; "
            "SQLite serialises writers by design"
        )
    import psycopg

    tmp = tmp_path_factory.mktemp("authorize")
    settings = connection.settings_dict
    name = f"tarifa_auth_{uuid.uuid4().hex[:8]}"
    dsn = f"host={settings['HOST']} port={settings['PORT']} user={settings['USER']} dbname=postgres"
    template = request.getfixturevalue("migrated_template").url.rsplit("/", 1)[1]  # migrated once per session
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{name}"
    env = dict(
        os.environ,
        TARIFA_VAR_DIR=str(tmp),
        TARIFA_DATABASE_URL=url,
        PYTHONPATH=os.pathsep.join([str(HERE.parent.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    servers: list[subprocess.Popen] = []
    try:
        done = subprocess.run(
            [sys.executable, str(HERE / "authorize_world.py"), "setup"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        made = json.loads(done.stdout.strip().splitlines()[-1])
        ports = [_free_port(), _free_port()]
        for port in ports:
            servers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tarifa.cli", "serve", "--port", str(port), "--workers", str(WORKERS)],
                    env=env,
                    stdout=(tmp / f"access-{port}.log").open("w"),
                    stderr=(tmp / f"server-{port}.log").open("w"),
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 60
        for port, server in zip(ports, servers, strict=True):
            _wait_healthy(port, server, deadline)
        w = World(env=env, token=made["token"], ports=ports, scenarios=made["scenarios"], logs=tmp)
        _warm_up(w)
        yield w
    finally:
        for server in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _warm_up(w: World) -> None:
    """Two rounds of concurrent calls from the warm-up customer (released at once), so every
    worker has loaded Django, its snapshot and its rate tables before a burst is timed."""
    for round_ in range(2):
        answers, _first, _last = _burst(w, "warm", 8 * WORKERS * len(w.ports), f"warm{round_}")
        assert all(a["allowed"] for a in answers), Counter(a["reason"] for a in answers)
        for a in answers:
            _post(w.ports[0], f"/api/v1/calls/{a['call_id']}/end", w.token)


def _burst(
    w: World, login: str, count: int, tag: str, *, at_second_boundary: bool = False
) -> tuple[list[dict], float, float]:
    """``count`` authorisations from ``login``, released together by a barrier, alternately to
    each server. Returns the answers and the wall-clock times of the first send and last answer."""
    barrier = threading.Barrier(count + 1)
    answers: list[dict | Exception | None] = [None] * count
    sent: list[float] = [0.0] * count
    received: list[float] = [0.0] * count

    def one(n: int) -> None:
        port = w.ports[n % len(w.ports)]
        body = {"call_id": f"{tag}-{n}-{uuid.uuid4().hex[:6]}", "callee": UK, "sip_user": login}
        conn = HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            barrier.wait(timeout=30)
            sent[n] = time.time()
            conn.request(
                "POST",
                "/api/v1/calls/authorize",
                body=json.dumps(body),
                headers={"Authorization": f"Bearer {w.token}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            data = response.read()
            received[n] = time.time()
            assert response.status == 200, (response.status, data[:500])
            answers[n] = json.loads(data)
        except Exception as exc:  # noqa: BLE001 -- reported by the caller
            answers[n] = exc
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(count)]
    for t in threads:
        t.start()
    if at_second_boundary:
        # Release the burst just after a second starts, so that it fits in that second.
        now = time.time()
        time.sleep(int(now) + 1 - now + 0.005)
    barrier.wait(timeout=30)
    for t in threads:
        t.join(timeout=60)
    failed = [a for a in answers if not isinstance(a, dict)]
    assert not failed, failed[:3]
    return answers, min(sent), max(received)  # type: ignore[return-value]


def _reasons(answers: list[dict]) -> Counter:
    return Counter("allowed" if a["allowed"] else a["reason"] for a in answers)


@pytest.mark.slow
def test_fifty_simultaneous_calls_against_a_limit_of_ten_channels(world: World) -> None:
    before = [world.answered_by(port) for port in world.ports]
    answers, _first, _last = _burst(world, "conc", 50, "conc")
    time.sleep(0.2)  # let the access logs flush
    served = [world.answered_by(port) - n for port, n in zip(world.ports, before, strict=True)]
    assert served in ([25, 25], [0, 0]), served  # both servers answered (when serve keeps an access log)
    assert _reasons(answers) == {"allowed": 10, "concurrent_limit": 40}
    assert all(a["sip_code"] == 486 for a in answers if not a["allowed"])
    allowed = sorted(a["call_id"] for a in answers if a["allowed"])
    held = world.reservations()["conc"]
    assert held["count"] == 10 and sorted(held["call_ids"]) == allowed
    # Ending one call frees one channel, and only one.
    assert _post(world.ports[1], f"/api/v1/calls/{allowed[0]}/end", world.token) == {"released": True}
    again, _first, _last = _burst(world, "conc", 6, "conc-again")
    assert _reasons(again) == {"allowed": 1, "concurrent_limit": 5}
    assert world.reservations()["conc"]["count"] == 10


@pytest.mark.slow
@pytest.mark.parametrize(("login", "exactly"), [("whole", 1), ("slices", 10)])
def test_forty_simultaneous_calls_never_reserve_more_than_the_prepaid_balance(
    world: World, login: str, exactly: int
) -> None:
    """1.00 paid in, 0.10/min. ``whole``: calls may last 14400 s, so the first call admitted
    reserves the whole 1.00 (600 s); ``slices``: calls may last 60 s, so each reserves 0.10
    and exactly ten fit."""
    answers, _first, _last = _burst(world, login, 40, login)
    reasons = _reasons(answers)
    assert reasons["allowed"] >= 1
    assert set(reasons) <= {"allowed", "insufficient_funds"}, reasons
    answered = sum((Decimal(a["reserved"]) for a in answers if a["allowed"]), Decimal(0))
    held = world.reservations()[login]
    assert answered <= Decimal("1.00") and Decimal(held["sum"]) <= Decimal("1.00"), (answered, held)
    assert Decimal(held["sum"]) == answered and held["count"] == reasons["allowed"]
    assert Decimal(held["balance"]) == Decimal("1.00")
    # Exact, not merely safe: the whole balance is reserved, by as many calls as it pays for.
    assert reasons["allowed"] == exactly and answered == Decimal("1.00"), (reasons, answered)


@pytest.mark.slow
def test_twenty_attempts_within_one_second_against_a_cps_limit_of_five(world: World) -> None:
    admitted = 0
    for attempt in range(3):
        answers, first, last = _burst(world, "cps", 20, f"cps{attempt}", at_second_boundary=True)
        admitted += sum(a["allowed"] for a in answers)
        if int(first) == int(last):
            break  # every request was sent and answered within one second
    else:
        pytest.fail(f"three bursts of 20 requests each straddled a second boundary (last: {last - first:.3f} s)")
    assert _reasons(answers) == {"allowed": 5, "cps_limit": 15}, f"burst took {last - first:.3f} s"
    assert all(a["sip_code"] == 503 for a in answers if not a["allowed"])
    assert world.reservations()["cps"]["count"] == admitted
