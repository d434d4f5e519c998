"""New-user finding 18: a request with a Host header not in TARIFA_ALLOWED_HOSTS is answered 400 and
leaves one short warning line in the server log -- not a fifteen-line traceback per request that
anyone can send in a loop."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    """What the configured log handlers (settings.LOGGING) write, instead of standard error."""
    handlers = {
        handler
        for logger in (logging.getLogger(), logging.getLogger("django.security"), logging.getLogger("django"))
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler  # not pytest's capturing handlers
    }
    assert handlers, "settings.LOGGING configured no stream handler"
    out = io.StringIO()
    kept = {handler: handler.setStream(out) for handler in handlers}
    try:
        yield out
    finally:
        for handler, stream in kept.items():
            handler.setStream(stream)


@pytest.mark.parametrize("path", ["/api/v1/health", "/admin/login/", "/api/v1/calls/authorize"])
def test_a_disallowed_host_is_one_warning_line_without_traceback(
    client: Any, server_log: io.StringIO, path: str
) -> None:
    response = client.get(path, HTTP_HOST="evil.example")
    assert response.status_code == 400
    lines = server_log.getvalue().splitlines()
    assert lines == [
        "WARNING django.security.DisallowedHost: Invalid HTTP_HOST header: 'evil.example'. "
        "You may need to add 'evil.example' to ALLOWED_HOSTS."
    ]


def test_a_defect_still_logs_its_traceback(server_log: io.StringIO) -> None:
    """Only refusals lose their traceback: an error elsewhere keeps it (the log is for finding defects)."""
    try:
        raise RuntimeError("a defect")
    except RuntimeError:
        logging.getLogger("django.request").exception("Internal Server Error: /x")
    assert "Traceback (most recent call last)" in server_log.getvalue()
