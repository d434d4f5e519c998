"""Queueing a notice: its template rendered with a flat context of strings, one outbox row per key.

Rendering happens here, when the notice is queued: the outbox row keeps what was (or will be)
sent, and the sender only delivers. Nothing here talks to SMTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from tarifa.core import mailtemplates
from tarifa.core.notices import NoticeKind, OutboxStatus, header_text, recipients
from tarifa.notices.defaults import DEFAULTS
from tarifa.notices.models import NoticeSettings, NoticeTemplate, Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body_text: str
    body_html: str


@dataclass(frozen=True)
class Notice:
    """One notice to queue: the template's kind, its unique key, the address lists (the first
    non-empty one is used) and the placeholders' values."""

    kind: NoticeKind
    key: str
    addresses: tuple[str, ...]
    context: Mapping[str, str]
    customer_id: int | None = None
    account_id: int | None = None
    invoice_id: int | None = None


def template_for(kind: NoticeKind, language: str = "") -> Rendered:
    """The operator's template of ``kind`` in ``language`` (else the one for everyone), else the
    shipped default."""
    rows = {t.language: t for t in NoticeTemplate.objects.filter(kind=kind, language__in={language, ""})}
    row = rows.get(language) or rows.get("")
    if row is not None:
        return Rendered(row.subject, row.body_text, row.body_html)
    default = DEFAULTS[kind]
    return Rendered(default.subject, default.body_text, default.body_html)


def render(template: Rendered, context: Mapping[str, str]) -> Rendered:
    """The template filled in: values flattened to one line each (a name with CR/LF never makes a
    header or a fake line), HTML-escaped in the HTML body, and the subject made header-safe."""
    flat = {name: header_text(value, 500) for name, value in context.items()}
    return Rendered(
        subject=header_text(mailtemplates.render(template.subject, flat)),
        body_text=mailtemplates.render(template.body_text, flat),
        body_html=mailtemplates.render(template.body_html, flat, escape=True) if template.body_html else "",
    )


def customer_addresses(customer_id: int, email: str) -> tuple[str, ...]:
    """Where a customer's notices go: its notice e-mails if set, else its own e-mail address."""
    own = NoticeSettings.objects.filter(customer_id=customer_id).values_list("emails", flat=True).first()
    return (own or "", email)


def enqueue(notice: Notice, now: datetime, template: Rendered | None = None) -> bool:
    """Queue ``notice`` unless its key is queued already (True when this call queued it); a check
    that queues many passes the ``template`` it read once. No valid
    address: the row is kept as failed, saying which addresses were refused, so the operator sees it."""
    to = recipients(*notice.addresses)
    content = render(template or template_for(notice.kind), notice.context)
    status, error = OutboxStatus.PENDING, ""
    if not to.good:
        status = OutboxStatus.FAILED
        refused = ", ".join(repr(a) for a in to.refused) or "none set"
        error = f"no valid e-mail address to send to (refused: {refused})"
    try:
        with transaction.atomic():
            Outbox.objects.create(
                kind=notice.kind,
                key=notice.key,
                customer_id=notice.customer_id,
                account_id=notice.account_id,
                invoice_id=notice.invoice_id,
                recipients=", ".join(to.good)[:1000],
                subject=content.subject,
                body_text=content.body_text,
                body_html=content.body_html,
                status=status,
                last_error=error,
                next_attempt_at=now,
                created_at=now,
            )
    except IntegrityError:
        if Outbox.objects.filter(key=notice.key).exists():
            return False  # queued by another worker or an earlier run: sent once
        raise
    return True
