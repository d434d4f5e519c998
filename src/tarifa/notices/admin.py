"""Back office of the notices: the outbox (read-only, "send again"), the templates (checked on
save, "send a test"), and the customers' low-balance settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join
from unfold.contrib.filters.admin import AutocompleteSelectFilter, ChoicesDropdownFilter, RangeDateFilter

from tarifa.admin_base import ReadOnlyAdmin, TarifaAdmin
from tarifa.core.notices import PLACEHOLDERS, NoticeKind, recipients
from tarifa.notices.models import NoticeSettings, NoticeTemplate, Outbox
from tarifa.notices.queue import Rendered, render
from tarifa.notices.sender import SMTP_TIMEOUT_SECONDS, send_again


@admin.register(Outbox)
class OutboxAdmin(ReadOnlyAdmin):
    """Every notice queued, with its delivery: what went to whom, when, and the SMTP error if any."""

    list_display = ("created_at", "kind", "status", "customer", "recipients", "subject", "attempts", "sent_at")
    list_filter = (
        ("kind", ChoicesDropdownFilter),
        ("status", ChoicesDropdownFilter),
        ("customer", AutocompleteSelectFilter),
        ("created_at", RangeDateFilter),
    )
    list_filter_submit = True
    search_fields = ("recipients", "subject", "customer__company", "customer__account_code", "key")
    date_hierarchy = "created_at"
    actions = ["send_again"]

    @admin.action(description="Send again now (failed or waiting to retry)", permissions=["resend"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[Outbox]) -> None:
        queued = send_again(list(queryset.values_list("id", flat=True)))
        skipped = queryset.count() - queued
        self.message_user(
            request,
            f"{queued} e-mail(s) queued again; the worker sends them on its next sweep"
            + (f"; {skipped} neither failed nor waiting to retry, left as they are" if skipped else ""),
            messages.SUCCESS if queued else messages.WARNING,
        )

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notices.change_outbox")


#: sample values of every placeholder, for the test e-mail
SAMPLE = {
    "customer_name": "Jane Doe",
    "company": "Doe Ltd",
    "account_code": "C1234567",
    "currency": "USD",
    "account_name": "account alice (A7654321)",
    "available_funds": "4.20",
    "threshold": "10.00",
    "balance": "4.20",
    "card": "VISA ****4242",
    "expiry": "12/2030",
    "expires_on": "2030-12-31",
    "days_left": "7",
    "invoice_number": "INV-2030-000123",
    "credit_note_number": "INV-2030-000124",
    "net": "41.67",
    "tax": "8.33",
    "total": "123.45",
    "issued_on": "2030-12-01",
    "due_date": "2030-12-31",
    "period_start": "2030-11-01",
    "period_end": "2030-11-30",
    "amount": "50.00",
    "reference": "PAY-1",
    "paid_on": "2030-12-02",
}


@admin.register(NoticeTemplate)
class NoticeTemplateAdmin(TarifaAdmin):
    """The operator's templates; a kind without one uses the shipped default."""

    list_display = ("kind", "language", "subject", "updated_at")
    list_filter = (("kind", ChoicesDropdownFilter),)
    readonly_fields = ("placeholders",)
    fields = ("kind", "language", "subject", "body_text", "body_html", "placeholders")
    actions = ["send_test"]

    @admin.display(description="Placeholders")
    def placeholders(self, obj: NoticeTemplate | None) -> str:
        kinds = (
            [NoticeKind(obj.kind)]
            if obj is not None and obj.kind in {k.value for k in NoticeKind}
            else list(NoticeKind)
        )
        return format_html_join(
            "",
            "<p><b>{}</b>: {}</p>",
            ((kind.value, ", ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS[kind])) for kind in kinds),
        )

    @admin.action(description="Send a test e-mail to me", permissions=["view"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[NoticeTemplate]) -> None:
        """Each selected template, filled with sample values, sent now to the signed-in user."""
        to = recipients(getattr(request.user, "email", "") or "")
        if not to.good:
            self.message_user(request, "Your user has no valid e-mail address: set one first", messages.ERROR)
            return
        connection = get_connection(timeout=SMTP_TIMEOUT_SECONDS)
        for template in queryset:
            content = render(Rendered(template.subject, template.body_text, template.body_html), SAMPLE)
            email = EmailMultiAlternatives(
                subject=f"[test] {content.subject}",
                body=content.body_text,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=list(to.good),
                connection=connection,
            )
            if content.body_html:
                email.attach_alternative(content.body_html, "text/html")
            try:
                email.send()
            except Exception as exc:  # noqa: BLE001 - shown to the operator
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())
                self.message_user(request, f"{template}: not sent: {reason}", messages.ERROR)
                return
        self.message_user(
            request, f"{queryset.count()} test e-mail(s) sent to {', '.join(to.good)} at {timezone.now():%H:%M:%S} UTC"
        )


@admin.register(NoticeSettings)
class NoticeSettingsAdmin(TarifaAdmin):
    list_display = ("customer", "low_balance_threshold", "emails", "rearmed_at")
    search_fields = ("customer__company", "customer__name", "customer__account_code", "emails")
    autocomplete_fields = ("customer",)
    readonly_fields = ("rearmed_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("customer", "rearmed_at") if obj is not None else ("rearmed_at",)
