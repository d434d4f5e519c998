"""One request through a WSGI application inside a test's database transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def call_wsgi(app: Callable[..., Any], environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of ``app`` for ``environ``. As Django's test client does, the
    request signals that close old connections are held off, so the test's connection (and its
    transaction) survives the request."""
    from django.core import signals
    from django.db import close_old_connections

    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started["status"], started["headers"] = int(status.split()[0]), dict(headers)

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        content = b"".join(app(environ, start_response))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return started["status"], started["headers"], content
