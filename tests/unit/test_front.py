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
def test_too_large_is_413_unread_and_a_client_that_goes_gets_no_answer() -> None:
    assert _drive(_front(), _scope(length=1001), [])[0] == 413
    assert _drive(
        _front(),
        _scope(length=100),
        [{"type": "http.request", "body": b"x", "more_body": True}, {"type": "http.disconnect"}],
    ) == (0, {}, b"")


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
