"""A real SMTP server on loopback for the tests (aiosmtpd), and the fixture that points Django's mail at it.

``smtp_server`` starts one server for the whole session; each test that takes the fixture starts with an
empty mailbox and reads what arrived as :class:`email.message.EmailMessage` objects::

    def test_notice(smtp_server):
        ...
        [mail] = smtp_server.wait_for(1)
        assert mail["To"] == "alice@example.com"

Subprocesses (``tarifa serve`` started by a test) reach the same server with
``TARIFA_SMTP_HOST=127.0.0.1 TARIFA_SMTP_PORT=<smtp_server.port>``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


class Mailbox:
    """What the server received, in order of arrival (thread-safe: the server runs in its own thread)."""

    def __init__(self) -> None:
        self._messages: list[EmailMessage] = []
        self._envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Condition()
        self.host = "127.0.0.1"
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd handler hook
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self._messages.append(parsed)
            self._envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._lock.notify_all()
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        """(MAIL FROM, RCPT TO list) of each message."""
        with self._lock:
            return list(self._envelopes)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._envelopes.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:  # float-ok: seconds
        """The first ``count`` messages, waiting up to ``timeout`` seconds for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} e-mails, received {len(self._messages)}")
                self._lock.wait(left)
            return list(self._messages[:count])


@pytest.fixture(scope="session")
def _smtp_controller() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    # A free port picked by the kernel (aiosmtpd's start-up check connects to the port it was given,
    # so port 0 itself cannot be passed).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        mailbox.port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(_smtp_controller: Mailbox, settings: Any) -> Iterator[Mailbox]:
    """The session's SMTP server with an empty mailbox; Django's mail goes to it during the test."""
    _smtp_controller.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = _smtp_controller.host
    settings.EMAIL_PORT = _smtp_controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield _smtp_controller
    _smtp_controller.clear()
