"""Slow request bodies against a real ``tarifa serve`` (issue 12, item 1: "bound the time of a body
read"), and the access log's escaping (issue 12, low): a body that has not arrived within
TARIFA_BODY_TIMEOUT is answered 408 and holds no thread while it is waited for; a slow client that
closes its connection gives its reader back; a request cannot write raw control characters into
the access log.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.databases import MigratedTemplate
from tests.switch_server import HOLD, PATH, PROMPT, UK, Server, SlowClient, serving

TIMEOUT = 3  # TARIFA_BODY_TIMEOUT of the server under test


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: MigratedTemplate) -> Iterator[Server]:
    yield from serving(
        tmp_path_factory.mktemp("slow-bodies"), sqlite_template, TARIFA_BODY_TIMEOUT=str(TIMEOUT), TARIFA_ACCESS_LOG="1"
    )


def test_slow_bodies_are_answered_408_within_the_bound(server: Server) -> None:
    """Connections that announce Content-Length 100000 (allowed on their path) and send a few bytes get
    408 once TARIFA_BODY_TIMEOUT has passed, not when the client gives up; health and authorisation
    answer promptly all the while."""
    attackers = [SlowClient(server.port, "/api/v1/cdrs", 100_000, server.spare_token) for _ in range(2)]
    attackers += [
        SlowClient(server.port, "/api/v1/health", 100_000, headers=f"X-Forwarded-For: 203.0.113.{n}\r\n")
        for n in range(1, 3)
    ]  # with the two above, at most the 4 places of one worker
    attackers += [SlowClient(server.port, PATH, 1000, server.spare_token)]
    try:
        time.sleep(0.3)
        while any(a.status() is None for a in attackers) and time.monotonic() - attackers[0]._started < TIMEOUT + 5:
            started = time.monotonic()
            assert server.request("GET", "/api/v1/health", timeout=PROMPT)[0] == 200
            call = {"call_id": f"meanwhile-{uuid.uuid4().hex[:8]}", "callee": UK, "sip_user": "warm"}
            status, _h, body = server.authorize(call, timeout=PROMPT)
            assert status == 200 and json.loads(body)["allowed"] is True, body
            assert time.monotonic() - started < PROMPT
            time.sleep(0.2)
        for a in attackers:
            a.wait(PROMPT)
            assert a.status() == 408, a.answer[:300]
            assert a.answered_after is not None and TIMEOUT - 0.5 < a.answered_after < TIMEOUT + PROMPT, (
                a.answered_after
            )
            document = a.document()
            assert document["title"] == "Request timeout"
            assert f"within {TIMEOUT} seconds (TARIFA_BODY_TIMEOUT)" in document["detail"], document
            assert b"connection: close" in a.answer.lower()
    finally:
        for a in attackers:
            a.close()


def _held(server: Server, address: str, count: int = 8) -> tuple[list[SlowClient], int]:
    """``count`` slow log-in forms from one address: the clients, and how many the server waits for
    (the others answered 503 at once, that address's share of the readers being taken)."""
    clients = [
        SlowClient(server.port, "/admin/login/", 1000, headers=f"X-Forwarded-For: {address}\r\n") for _ in range(count)
    ]
    time.sleep(0.5)
    assert all(c.status() in (None, 503) for c in clients), [(c.answered_after, c.answer[-200:]) for c in clients]
    return clients, sum(c.status() is None for c in clients)


def test_a_closed_slow_connection_gives_its_reader_back(server: Server) -> None:
    """Hold an address's readers, close the sockets: the readers are free again at once (the next
    slow forms from that address are waited for as many as before, not answered 503)."""
    for _round in range(3):
        clients, held = _held(server, "198.51.100.77")
        assert 2 <= held <= 4, (
            _round,
            [(c.answered_after, c.answer[-100:]) for c in clients],
        )  # 2 per worker process, at least one worker reached
        for c in clients:
            c.close()
        time.sleep(0.3)
    again, held_again = _held(server, "198.51.100.77", 16)
    try:
        assert held_again >= 2 and sum(c.status() == 503 for c in again) == 16 - held_again
    finally:
        for c in again:
            c.close()


def test_the_access_log_escapes_control_characters(server: Server) -> None:
    """A request line with CR LF and ESC (percent-encoded) and a header with a raw C1 control (0x9b,
    CSI: an escape sequence to many terminals) and a non-ASCII byte: one log line, every such character
    shown escaped. (Raw C0 controls in the request line or a header are refused by granian's parser
    with 400 before any application sees them.)"""
    marker = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT) as sock:
        sock.sendall(
            f"GET /api/v1/health?{marker}%0d%0aFORGED%1b[31m HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"User-Agent: evil\x9b2J{marker}\xff\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    deadline = time.monotonic() + PROMPT
    while marker not in server.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in server.log.read_bytes().split(b"\n") if marker.encode() in line]
    assert len(lines) == 1, lines
    line = lines[0]
    assert not any(byte < 0x20 or byte >= 0x7F for byte in line), line
    assert b"evil\\x9b2J" in line and b"\\xff" in line and b"%0d%0aFORGED%1b[31m" in line, line
    assert b'"GET /api/v1/health?' in line and b" 200 " in line, line


def _raw_post(
    port: int, path: str, body: bytes, headers: str = "", source: str = "127.0.0.1", pause: float = 0.005
) -> tuple[int, bytes]:
    """A POST whose headers and body go in separate writes (as most clients send them), from the
    loopback address ``source``: the status and the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=HOLD, source_address=(source, 0)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        time.sleep(pause)
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ")[1]), answer


class _From(SlowClient):
    """A SlowClient from another loopback address (as the attacker's 127.0.0.5 and 127.0.0.6)."""

    def __init__(self, port: int, path: str, length: int, source: str) -> None:
        real = socket.create_connection
        socket.create_connection = lambda address, timeout=None: real(address, timeout, (source, 0))  # type: ignore[assignment,misc]
        try:
            super().__init__(port, path, length)
        finally:
            socket.create_connection = real


def test_slow_clients_from_two_addresses_do_not_stop_ordinary_posts(server: Server) -> None:
    """Attack item 1: 12 slow log-in forms from 127.0.0.5 and 127.0.0.6 hold every reader. An admin
    log-in whose body comes in a second write and a CDR push with the switch's token are answered
    (not 503): their bodies are in within bodies.GRACE and need no reader. Then 40 simultaneous
    log-ins from one address all get a log-in answer."""
    attackers = [_From(server.port, "/admin/login/", 10_000, f"127.0.0.{5 + n % 2}") for n in range(12)]
    try:
        time.sleep(0.5)
        assert sum(a.status() is None for a in attackers) >= 4, [a.answer[-200:] for a in attackers]
        for _round in range(5):
            status, answer = _raw_post(
                server.port,
                "/admin/login/",
                b"username=a&password=b",
                "Content-Type: application/x-www-form-urlencoded\r\n",
            )
            assert status in (200, 403), answer[:400]  # the form or Django's CSRF refusal: not 503
            status, answer = _raw_post(
                server.port,
                "/api/v1/cdrs",
                b"[]",
                f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n",
            )
            assert status == 200 and json.loads(answer.partition(b"\r\n\r\n")[2])["received"] == 0, answer[:400]
    finally:
        for a in attackers:
            a.close()
    results: list[int] = []

    def log_in() -> None:
        results.append(
            _raw_post(
                server.port,
                "/admin/login/",
                b"username=a&password=b",
                "Content-Type: application/x-www-form-urlencoded\r\n",
                source="127.0.0.7",
            )[0]
        )

    threads = [threading.Thread(target=log_in) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HOLD)
    assert len(results) == 40 and all(status in (200, 403) for status in results), sorted(results)


def test_a_client_that_half_closes_mid_body_gets_400_and_a_sane_log_line(server: Server) -> None:
    """Attack item 14: headers announcing 100 bytes, 10 sent, then the client shuts its writing side:
    400 (the connection closed), not 500, and the access log shows 400, not status 0."""
    marker = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT + TIMEOUT) as sock:
        sock.sendall(
            f"POST /admin/login/?{marker} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789".encode()
        )
        time.sleep(0.2)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert not answer.startswith(b"HTTP/1.1 500"), answer[:300]
    if answer:
        assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 408")), answer[:300]
    deadline = time.monotonic() + PROMPT
    while marker not in server.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in server.log.read_text(errors="replace").splitlines() if marker in line]
    assert len(lines) == 1 and (" 400 " in lines[0] or " 408 " in lines[0]), lines
