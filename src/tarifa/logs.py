"""Logging pieces named in ``settings.LOGGING``."""

from __future__ import annotations

import logging


class RefusalWithoutTraceback(logging.Filter):
    """A ``django.security.*`` record as one warning line, without the exception's traceback.

    Django logs every request it refuses as suspicious -- a Host header not in TARIFA_ALLOWED_HOSTS,
    too many form fields, a body too large -- at ERROR with the full traceback of the exception:
    about fifteen lines per request, which anyone who can reach the server can send in a loop to
    flood the log and bury real errors. The refusal is the client's mistake, answered 400; the
    message already says what was refused (``Invalid HTTP_HOST header: 'evil.example'``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True
