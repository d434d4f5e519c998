"""Smoke test: ``tarifa serve`` (granian) as a subprocess answers the health endpoint, the admin login
and a static file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.databases import MigratedTemplate, copy_sqlite
from tests.served import free_port, tarifa_serve


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.django_db(transaction=True)
def test_serve_answers_health_and_admin_login(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from django.db import connection

    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp_path))
    if connection.vendor == "sqlite":
        env["TARIFA_DATABASE_URL"] = request.getfixturevalue("migrated_sqlite_url")
    else:
        s = connection.settings_dict
        env["TARIFA_DATABASE_URL"] = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    log = tmp_path / "server.log"
    with tarifa_serve(env, log, "--workers", "2") as port:
        status, body = _get(f"http://127.0.0.1:{port}/api/v1/health")
        assert status == 200, body
        assert b'"migrations":"applied"' in body.replace(b" ", b"")
        status, body = _get(f"http://127.0.0.1:{port}/admin/login/")
        assert status == 200 and b"csrfmiddlewaretoken" in body
        status, _css = _get(f"http://127.0.0.1:{port}/static/admin/css/base.css")
        assert status == 200
        # monitors probe with HEAD (finding 19): answered like GET, without a body
        head = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/health", method="HEAD")
        with urllib.request.urlopen(head, timeout=5) as response:
            assert response.status == 200 and response.read() == b""
        status, body = _get(f"http://127.0.0.1:{port}/api/v1/nope")
        assert status == 404 and b'"status": 404' in body
    output = log.read_text(errors="replace")
    assert "granian" in output.lower() and "Started worker" in output


def test_serve_without_the_body_deadline_runs_wsgi_and_logs_escaped(tmp_path: Path, migrated_sqlite_url: str) -> None:
    """TARIFA_BODY_TIMEOUT=0: granian's WSGI interface directly (no 408), the access log still Tarifa's."""
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp_path / "var"), TARIFA_BODY_TIMEOUT="0", TARIFA_ACCESS_LOG="1")
    env["TARIFA_DATABASE_URL"] = migrated_sqlite_url
    log = tmp_path / "server.log"
    with tarifa_serve(env, log, "--workers", "1") as port:
        assert _get(f"http://127.0.0.1:{port}/api/v1/health?a%0d%0ab")[0] == 200
    output = log.read_text(errors="replace")
    lines = [line for line in output.splitlines() if "/api/v1/health?a%0d%0ab" in line]
    assert lines and '"GET /api/v1/health?a%0d%0ab HTTP/1.1" 200' in lines[-1], output[-2000:]


@pytest.mark.parametrize("command", [["serve", "--workers", "1"], ["worker", "--once"]])
def test_a_bad_variable_stops_the_command_before_it_starts(tmp_path: Path, command: list[str]) -> None:
    """New-user finding 10: TARIFA_DID_QUARANTINE_DAYS=abc let `tarifa serve` start, and the first DID
    release answered HTTP 500. Every variable is checked first: exit 2, named, nothing served."""
    port = free_port()
    env = dict(
        os.environ,
        TARIFA_VAR_DIR=str(tmp_path / "var"),
        TARIFA_LISTEN=f"127.0.0.1:{port}",
        TARIFA_DID_QUARANTINE_DAYS="abc",
        TARIFA_LOGIN_LOCKOUT="15m",
    )
    env.pop("TARIFA_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "tarifa.cli", *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "TARIFA_LOGIN_LOCKOUT '15m' is refused: must be a whole number from 1 to 604800",
        "TARIFA_DID_QUARANTINE_DAYS 'abc' is refused: must be a whole number from 0 to 3650",
    ]
    assert not (tmp_path / "var").exists()  # stopped before the database was looked for


def _listener(reuse_port: bool) -> socket.socket:
    """A socket listening on a free loopback port, with granian's options when ``reuse_port``."""
    sock = socket.socket()
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory, sqlite_template: MigratedTemplate) -> dict[str, str]:
    """The environment of a migrated SQLite database of its own (``tarifa serve`` would start on it)."""
    assert sqlite_template.sqlite_file is not None
    where = tmp_path_factory.mktemp("serve-migrated")
    url = copy_sqlite(sqlite_template.sqlite_file, where / "db.sqlite3")
    return dict(os.environ, TARIFA_VAR_DIR=str(where), TARIFA_DATABASE_URL=url)


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain listener", "granian-like listener"])
def test_serve_on_an_address_in_use_fails_at_once(migrated: dict[str, str], reuse_port: bool) -> None:
    """New-user finding 11: a second server on a taken port started (granian binds with SO_REUSEPORT)
    and the requests were split between the two. It must fail at once, naming the address."""
    with _listener(reuse_port) as taken:
        port = taken.getsockname()[1]
        env = dict(migrated, TARIFA_LISTEN=f"127.0.0.1:{port}")
        server = subprocess.Popen(
            [sys.executable, "-m", "tarifa.cli", "serve", "--workers", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _out, err = server.communicate(timeout=30)
        finally:
            if server.poll() is None:  # the defect: it serves; stop it
                os.killpg(server.pid, signal.SIGTERM)
                server.communicate(timeout=15)
    assert server.returncode == 2, err
    assert err.startswith(f"Cannot listen on 127.0.0.1:{port}: address already in use"), err


def test_the_port_of_a_server_just_stopped_is_free_again() -> None:
    """The check counts listeners only: connections of a stopped server in TIME_WAIT do not make its
    port "in use" (a restart right after a stop works, as granian's own bind does)."""
    from tarifa.cli import _refuse_taken_address

    listener = _listener(reuse_port=True)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _address = listener.accept()
    accepted.close()  # the server side closes first: its end of the connection waits in TIME_WAIT
    time.sleep(0.1)
    client.close()
    listener.close()
    _refuse_taken_address("127.0.0.1", port)  # no exit
