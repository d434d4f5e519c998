"""``tarifa.front`` as an ASGI application, driven directly (no server): the body deadline, the size
bound, a client that goes, the escaped access log line."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from tarifa.front import Front, printable


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _scope(path: str = "/api/v1/health", length: int | None = None, raw_path: bytes | None = None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": raw_path or path.encode(),
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("192.0.2.1", 5000),
        "headers": headers,
        "root_path": "",
    }


def _drive(
    front: Front, scope: dict[str, Any], messages: list[dict[str, Any]]
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the client sends nothing more
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(front(scope, receive, send))
    if not sent:
        return 0, {}, b""
    return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def _front(timeout: float = 0.3, log: bool = False) -> Front:
    return Front(_app, threads=1, readers=4, body_max=1000, body_timeout=timeout, log=log)


@pytest.mark.django_db
def test_a_whole_body_reaches_the_application() -> None:
    status, _h, body = _drive(_front(), _scope(length=5), [{"type": "http.request", "body": b"hello"}])
    assert (status, body) == (200, b"hello")


@pytest.mark.django_db
def test_a_body_slower_than_the_deadline_is_408() -> None:
    status, headers, body = _drive(
        _front(), _scope(length=100), [{"type": "http.request", "body": b'{"a', "more_body": True}]
    )
    assert status == 408 and headers[b"connection"] == b"close"
    assert (
        "did not arrive within 0.3 seconds (TARIFA_BODY_TIMEOUT): 3 bytes of the 100 announced came"
        in json.loads(body)["detail"]
    )


@pytest.mark.django_db
def test_nothing_at_all_is_408_too() -> None:
    status, _h, _body = _drive(_front(), _scope(length=100), [])
    assert status == 408


@pytest.mark.django_db
def test_too_large_is_413_unread_and_a_client_that_goes_mid_body_is_400_not_500() -> None:
    """A client that closes (or half-closes) in the middle of its body: 400 naming what came, the
    connection closed -- not the server's 500, not a log line with status 0 (attack item 14)."""
    assert _drive(_front(), _scope(length=1001), [])[0] == 413
    status, headers, body = _drive(
        _front(),
        _scope(length=100),
        [{"type": "http.request", "body": b"x", "more_body": True}, {"type": "http.disconnect"}],
    )
    assert status == 400 and headers[b"connection"] == b"close"
    assert "after 1 of the 100 bytes" in json.loads(body)["detail"]


def _all_slots_taken(front: Front) -> None:
    for n in range(front.other_slots.count):
        assert front.other_slots.take(f"slow-{n}", patience=0.0) is None


@pytest.mark.django_db
def test_a_body_in_two_quick_messages_needs_no_slot() -> None:
    """Headers and body in separate messages (every ordinary POST through granian): the rest is in
    within bodies.GRACE, so it is served although slow clients hold every reader (attack item 1)."""
    front = _front()
    _all_slots_taken(front)
    status, _h, body = _drive(
        front,
        _scope(length=10),
        [{"type": "http.request", "body": b"", "more_body": True}, {"type": "http.request", "body": b"0123456789"}],
    )
    assert (status, body) == (200, b"0123456789")


@pytest.mark.django_db
def test_a_body_slower_than_the_grace_still_needs_a_slot() -> None:
    """The rest of the body comes after bodies.GRACE: a slow client, answered 503 while the readers
    are all held (slow clients stay limited), and served when one is free."""
    from tarifa.api import bodies

    def messages() -> list[dict[str, Any]]:
        return [{"type": "http.request", "body": b"01", "more_body": True}, {"type": "http.request", "body": b"234"}]

    async def drive(front: Front) -> list[dict[str, Any]]:
        queue = messages()
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if len(queue) == 1:
                await asyncio.sleep(bodies.GRACE * 3)
            return queue.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await front(_scope("/admin/login/", length=5), receive, send)
        return sent

    front = _front(timeout=2)
    _all_slots_taken(front)
    assert asyncio.run(drive(front))[0]["status"] == 503
    free = _front(timeout=2)
    sent = asyncio.run(drive(free))
    assert sent[0]["status"] != 503 and free.other_slots._used == 0


def test_printable_escapes_controls_quotes_and_non_ascii() -> None:
    assert printable('/a\r\nb\x1b[2J"\\\x9bé\u2028') == "/a\\x0d\\x0ab\\x1b[2J\\x22\\x5c\\x9b\\xe9\\u2028"


@pytest.mark.django_db
def test_the_access_log_line_is_one_escaped_line(caplog: pytest.LogCaptureFixture) -> None:
    front = _front(log=True)
    logging.getLogger("tarifa.access").propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="tarifa.access"):
            _drive(front, _scope("/x\r\ny", 0, raw_path=b"/x\r\ny\x1b"), [])
    finally:
        logging.getLogger("tarifa.access").propagate = False
    lines = [r.getMessage() for r in caplog.records if r.name == "tarifa.access"]
    assert len(lines) == 1 and "\n" not in lines[0] and "\r" not in lines[0] and "\x1b" not in lines[0]
    assert '"POST /x\\x0d\\x0ay\\x1b HTTP/1.1" 200' in lines[0], lines
