"""The notices' state in the database: per-customer settings, the operator's templates, and the
outbox -- every e-mail queued, with what was sent when (the unique ``key`` makes "two workers
never send the same notice twice" a database guarantee, not a lock in memory)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from tarifa import validators as v
from tarifa.core import mailtemplates
from tarifa.core.notices import PLACEHOLDERS, NoticeKind
from tarifa.fields import LabeledCharField, choice_field, money_field
from tarifa.notices.choices import NOTICE_KIND_LABELS, OUTBOX_STATUS_LABELS, OutboxStatus

_KINDS = frozenset(kind.value for kind in NoticeKind)


class NoticeSettings(models.Model):
    """A customer's low-balance notice (the account-level one is ``Account.balance_threshold``)."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="notice_settings", verbose_name="customer"
    )
    low_balance_threshold = money_field(
        "Low-balance threshold",
        minimum=0,
        null=True,
        blank=True,
        default=None,
        places=2,
        help_text="An e-mail goes out when the available funds fall below this, then once a day while they "
        "stay below, until money is added. Empty: no low-balance e-mail for the customer.",
    )
    emails = LabeledCharField(
        "notice e-mails",
        max_length=500,
        blank=True,
        validators=[v.EmailList("Notice e-mails")],
        help_text="Comma-separated; empty: the customer's e-mail address.",
    )
    rearmed_at = models.DateTimeField(
        "re-armed at",
        null=True,
        blank=True,
        editable=False,
        help_text="Money added or threshold changed: the next low-balance check may notify at once.",
    )
    updated_at = models.DateTimeField("updated at", auto_now=True)

    class Meta:
        verbose_name = "low-balance notice setting"

    def __str__(self) -> str:
        return f"Notices of {self.customer}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # seed 001: the e-mails stop "until you add new funds ... or you change the balance threshold"
        stored = (
            NoticeSettings.objects.filter(pk=self.pk).values_list("low_balance_threshold", flat=True).first()
            if self.pk
            else None
        )
        if self.pk and stored != self.low_balance_threshold:
            self.rearmed_at = timezone.now()
        super().save(*args, **kwargs)


class NoticeTemplate(models.Model):
    """The subject and bodies of one kind of notice, as the operator wrote them (defaults shipped
    in ``notices/defaults.py``). Placeholders only -- see ``tarifa.core.mailtemplates``."""

    kind = choice_field("Kind", NOTICE_KIND_LABELS, max_length=20)
    language = LabeledCharField(
        "language",
        max_length=8,
        blank=True,
        help_text="Empty: the template for everyone; a language code (fr, de) for customers in that language.",
        validators=[v.Alphanumeric("Language")],
    )
    subject = LabeledCharField("subject", max_length=200)
    body_text = models.TextField("text body")
    body_html = models.TextField("HTML body", blank=True, help_text="Optional; values are HTML-escaped.")
    updated_at = models.DateTimeField("updated at", auto_now=True)

    class Meta:
        ordering = ["kind", "language"]
        constraints = [models.UniqueConstraint(fields=["kind", "language"], name="notice_template_kind_language")]

    def __str__(self) -> str:
        shown = NOTICE_KIND_LABELS.label(self.kind) if self.kind in _KINDS else self.kind
        return f"{shown} ({self.language})" if self.language else shown

    def clean(self) -> None:
        super().clean()
        if self.kind not in _KINDS:
            return  # the field's own choice check names it
        errors = template_errors(NoticeKind(self.kind), self.subject, self.body_text, self.body_html)
        if errors:
            raise ValidationError(errors)


def template_errors(kind: NoticeKind, subject: str, body_text: str, body_html: str) -> dict[str, list[str]]:
    """The refusals of a template's three parts, by field, each naming its line and placeholder."""
    allowed = PLACEHOLDERS[kind]
    errors: dict[str, list[str]] = {}
    for field, label, source in (
        ("subject", "Subject", subject or ""),
        ("body_text", "Text body", body_text or ""),
        ("body_html", "HTML body", body_html or ""),
    ):
        found = [f"{label} {problem}" for problem in mailtemplates.problems(source, allowed)]
        if field == "subject" and ("\n" in source or "\r" in source):
            found.append(f"Subject {source!r} is refused: must be one line")
        if found:
            errors[field] = found
    return errors


class Outbox(models.Model):
    """One e-mail to send: queued by a check or a signal, delivered by the sender with retries.
    ``key`` is unique: the same notice queued twice (two workers, a signal sent again) is one row."""

    kind = choice_field("Kind", NOTICE_KIND_LABELS, max_length=20)
    key = models.CharField("key", max_length=200, unique=True)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="notices"
    )
    account = models.ForeignKey(
        "customers.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="notices"
    )
    invoice = models.ForeignKey(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notices",
        help_text="Attached as PDF when the e-mail is sent.",
    )
    recipients = models.CharField("recipients", max_length=1000)
    subject = models.CharField("subject", max_length=200)
    body_text = models.TextField("text body")
    body_html = models.TextField("HTML body", blank=True)
    status = choice_field("Status", OUTBOX_STATUS_LABELS, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField("attempts", default=0)
    next_attempt_at = models.DateTimeField("next attempt at", default=timezone.now)
    claimed_until = models.DateTimeField("claimed until", null=True, blank=True)
    last_error = models.TextField("last error", blank=True)
    created_at = models.DateTimeField("queued at", default=timezone.now, db_index=True)
    sent_at = models.DateTimeField("sent at", null=True, blank=True)

    class Meta:
        verbose_name = "outbox e-mail"
        verbose_name_plural = "outbox"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]

    def __str__(self) -> str:
        return f"{NOTICE_KIND_LABELS.label(self.kind)} to {self.recipients}"
