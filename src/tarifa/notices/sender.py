"""Delivering the outbox: claim a due row, hand it to SMTP, record the outcome.

A row is claimed by one conditional UPDATE (pending/retrying and due, or a claim that lapsed), so
two workers never deliver the same row at once; a worker killed mid-send leaves a claim that lapses
after ``CLAIM`` and the row is tried again (at least once, never lost). A failed delivery waits
``core.notices.retry_delay`` and is marked failed, with the SMTP error, after ``MAX_ATTEMPTS``."""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import Q
from django.utils import timezone

from tarifa.core.notices import OutboxStatus, recipients, retry_delay
from tarifa.notices.models import Outbox

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=10)
SMTP_TIMEOUT_SECONDS = 30


@dataclass
class Delivery:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def _due(now: datetime) -> Q:
    waiting = Q(status__in=[OutboxStatus.PENDING, OutboxStatus.RETRYING], next_attempt_at__lte=now)
    lapsed = Q(status=OutboxStatus.SENDING, claimed_until__lt=now)
    return waiting | lapsed


def deliver(now: datetime | None = None, limit: int = 200) -> Delivery:
    """Send up to ``limit`` due e-mails over one SMTP connection; the counts of each outcome."""
    now = now or timezone.now()
    result = Delivery()
    ids = list(Outbox.objects.filter(_due(now)).order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])
    if not ids:
        return result
    connection = get_connection(timeout=SMTP_TIMEOUT_SECONDS)
    try:
        for row_id in ids:
            claimed = Outbox.objects.filter(_due(now), id=row_id).update(
                status=OutboxStatus.SENDING, claimed_until=now + CLAIM
            )
            if not claimed:
                continue  # another worker has it
            row = Outbox.objects.select_related("invoice").get(id=row_id)
            try:
                connection.send_messages([message(row)])
            except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row and retried
                _failed(row, exc, now, result)
                with contextlib.suppress(Exception):  # closing a broken session may fail too
                    connection.close()  # a half-open session is not reused for the next row
            else:
                Outbox.objects.filter(id=row_id).update(
                    status=OutboxStatus.SENT,
                    sent_at=timezone.now(),
                    attempts=row.attempts + 1,
                    claimed_until=None,
                    last_error="",
                )
                result.sent += 1
    finally:
        with contextlib.suppress(Exception):  # the results are recorded already
            connection.close()
    return result


def _failed(row: Outbox, exc: BaseException, now: datetime, result: Delivery) -> None:
    attempts = row.attempts + 1
    delay = retry_delay(attempts)
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:1000]
    if delay is None:
        status, next_at = OutboxStatus.FAILED, now
        result.failed += 1
    else:
        status, next_at = OutboxStatus.RETRYING, now + delay
        result.retrying += 1
    Outbox.objects.filter(id=row.pk).update(
        status=status, attempts=attempts, next_attempt_at=next_at, claimed_until=None, last_error=reason
    )
    log.warning("notice %s to %s not delivered (attempt %s): %s", row.key, row.recipients, attempts, reason)


def message(row: Outbox) -> EmailMultiAlternatives:
    """The e-mail of an outbox row; the invoice's PDF (the stored one) attached when it has one. Addresses are
    checked again here (a row edited in the database must not smuggle a header either)."""
    to = recipients(row.recipients)
    if not to.good or to.refused:
        raise ValueError(f"recipients {row.recipients!r} are refused: each must be a plain e-mail address")
    email = EmailMultiAlternatives(
        subject=row.subject, body=row.body_text, from_email=settings.DEFAULT_FROM_EMAIL, to=list(to.good)
    )
    if row.body_html:
        email.attach_alternative(row.body_html, "text/html")
    if row.invoice is not None:
        from tarifa.billing.pdfs import stored_pdf  # reportlab: loaded by the processes that send invoices

        name = attachment_name(row.invoice.number, row.invoice.kind)
        email.attach(name, stored_pdf(row.invoice), "application/pdf")
    return email


def attachment_name(number: str, kind: str = "invoice") -> str:
    """``invoice-<number>.pdf`` (``credit-note-<number>.pdf`` for a credit note) with anything but
    letters, digits, dot, dash and underscore replaced."""
    prefix = "credit-note-" if kind == "credit_note" else "invoice-"
    return prefix + (re.sub(r"[^A-Za-z0-9._-]", "_", number) or "unnumbered") + ".pdf"


def send_again(ids: list[int], now: datetime | None = None) -> int:
    """Queue failed rows, and rows waiting for their retry time, again at once with a fresh count of
    attempts (the back office's "send again", after the mail server was fixed)."""
    now = now or timezone.now()
    return Outbox.objects.filter(id__in=ids, status__in=[OutboxStatus.FAILED, OutboxStatus.RETRYING]).update(
        status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, claimed_until=None
    )


def retry_now(now: datetime | None = None) -> int:
    """Make every row waiting for its retry time due at once (``tarifa notices run --retry-now``)."""
    now = now or timezone.now()
    return Outbox.objects.filter(status=OutboxStatus.RETRYING, next_attempt_at__gt=now).update(next_attempt_at=now)


def waiting() -> int:
    """How many rows wait for a retry, whether their time has come or not."""
    return Outbox.objects.filter(status=OutboxStatus.RETRYING).count()
