from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateFilter

from tarifa import validators as v
from tarifa.admin_base import ReadOnlyAdmin, TarifaAdmin
from tarifa.billing.choices import InvoiceStatus, LineSection, TransactionKind
from tarifa.billing.models import (
    AutoTopUp,
    GatewayCharge,
    IncludedMinutes,
    Invoice,
    InvoiceLine,
    InvoicePdf,
    InvoiceSequence,
    MinutePoolUsage,
    PaymentAllocation,
    PaymentMethod,
    ServiceCharge,
    ServicePlan,
    Transaction,
    WebhookEvent,
    WebhookHit,
)
from tarifa.core import invoices, invoicing
from tarifa.customers.widgets import LineListField
from tarifa.forms import LabeledModelForm
from tarifa.validators import refuse


class IncludedMinutesForm(LabeledModelForm):
    """Prefixes typed one per line, like the account's other lists (customers/widgets.py), not as JSON."""

    prefixes = LineListField(
        label="Prefixes",
        required=True,
        item_validator=v.Digits("Prefix", 1, 15),
        help_text="One E.164 prefix per line, e.g. 1 for NANP or 44 for the UK.",
    )

    class Meta:
        model = IncludedMinutes
        fields = "__all__"


class IncludedMinutesInline(TabularInline):
    model = IncludedMinutes
    form = IncludedMinutesForm
    extra = 0


@admin.register(ServicePlan)
class ServicePlanAdmin(TarifaAdmin):
    list_display = (
        "name",
        "recurring_fee",
        "period",
        "setup_fee",
        "billing_day",
        "minimum_amount",
        "unpaid_action",
        "active",
        "offered_for_signup",
    )
    search_fields = ("name",)
    list_filter = (("period", ChoicesDropdownFilter), "active", "offered_for_signup")
    autocomplete_fields = ("signup_tariff",)
    inlines = [IncludedMinutesInline]


@admin.register(IncludedMinutes)
class IncludedMinutesAdmin(TarifaAdmin):
    form = IncludedMinutesForm
    list_display = ("plan", "name", "minutes", "rollover_cap")
    search_fields = ("name", "plan__name")


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "customer",
        "account",
        "kind",
        "amount",
        "balance_after",
        "currency",
        "description",
        "reference",
        "actor",
        "calls_link",
    )

    @admin.display(description="Calls")
    def calls_link(self, obj: Transaction) -> str:
        """A call charge lists the CDRs it charged (CDR listing filtered by this Transaction)."""
        if obj.kind != TransactionKind.CALL_CHARGE or obj.cdr_id:
            return ""
        url = reverse("admin:cdrs_cdr_changelist") + f"?transaction__id__exact={obj.pk}"
        return format_html('<a href="{}">calls</a>', url)

    search_fields = ("customer__company", "customer__account_code", "description", "reference", "actor")
    list_filter = (("kind", ChoicesDropdownFilter), ("created_at", RangeDateFilter))
    date_hierarchy = "created_at"


def _stored_status(invoice: Invoice) -> str | None:
    """The status in the database: after a refused POST the form has already written the wanted
    status onto the instance the admin renders again."""
    if invoice.pk is None:
        return InvoiceStatus.DRAFT
    return Invoice.objects.filter(pk=invoice.pk).values_list("status", flat=True).first()


class InvoiceLineFormSet(BaseInlineFormSet):
    """The lines of the invoice being saved: their amounts add up to its subtotal (core.invoices)."""

    def clean(self) -> None:
        super().clean()
        amounts = [
            form.cleaned_data["amount"]
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("amount") is not None
            # discount, penalty and tax lines are the invoice's own fields; usage lines repeat the calls
            and form.cleaned_data.get("section", LineSection.SERVICES) in invoicing.SUBTOTAL_SECTIONS
        ]
        problems = invoices.check_lines_sum(self.instance.subtotal, amounts)
        if problems:
            p = problems[0]
            raise ValidationError(refuse(p.label, p.value, p.rule, p.code))


class InvoiceLineInline(TabularInline):
    model = InvoiceLine
    formset = InvoiceLineFormSet
    extra = 0

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or _stored_status(obj) == InvoiceStatus.DRAFT

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


@admin.register(Invoice)
class InvoiceAdmin(TarifaAdmin):
    list_display = (
        "number",
        "customer",
        "period_start",
        "period_end",
        "status",
        "total",
        "currency",
        "due_date",
        "downloads",
    )
    search_fields = ("number", "customer__company", "customer__account_code")
    list_filter = (("status", ChoicesDropdownFilter), ("period_start", RangeDateFilter))
    inlines = [InvoiceLineInline]
    actions = ["download_csvs"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Only a draft is deleted; an issued invoice is voided (it stays on record)."""
        return super().has_delete_permission(request, obj) and (
            obj is None or _stored_status(obj) == InvoiceStatus.DRAFT
        )

    def get_actions(self, request: HttpRequest) -> Any:
        """ "Delete selected" only while there is a draft to delete: issued invoices and credit notes
        are never deleted, so the action is not offered for them (new-user finding #17)."""
        actions = super().get_actions(request)
        if "delete_selected" in actions and not Invoice.objects.filter(status=InvoiceStatus.DRAFT).exists():
            del actions["delete_selected"]
        return actions

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        kept = list(queryset.exclude(status=InvoiceStatus.DRAFT).values_list("number", flat=True))
        if kept:  # before anything is deleted: all or nothing
            raise PermissionDenied(f"Invoices {', '.join(kept)} are refused: only draft invoices can be deleted")
        super().delete_queryset(request, queryset)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and _stored_status(obj) != InvoiceStatus.DRAFT:
            return [*(f.name for f in Invoice._meta.fields if f.name not in ("id", "status")), "downloads"]
        return [*super().get_readonly_fields(request, obj), "downloads"]

    # --- the invoice as PDF and CSV (tarifa.billing.render): staff who may view invoices only ---
    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/pdf/", view(self.download_pdf), name="billing_invoice_pdf"),
            path("<path:object_id>/csv/", view(self.download_csv), name="billing_invoice_csv"),
            *super().get_urls(),
        ]

    @admin.display(description="Download")
    def downloads(self, obj: Invoice) -> str:
        if obj is None or obj.pk is None:
            return "—"
        return format_html(
            '<a href="{}">Download PDF</a> · <a href="{}">Download CSV</a>',
            reverse("admin:billing_invoice_pdf", args=[obj.pk]),
            reverse("admin:billing_invoice_csv", args=[obj.pk]),
        )

    def _downloadable(self, request: HttpRequest, object_id: str) -> Invoice:
        """The invoice, once the asker may view it (403 otherwise; 404 when there is none)."""
        if not self.has_view_permission(request):
            raise PermissionDenied("You may not view invoices")
        invoice = self.get_object(request, object_id)
        if invoice is None:
            raise Http404(f"Invoice {object_id} does not exist")
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied("You may not view this invoice")
        return invoice

    @admin.action(description="Download the selected invoices as CSV (ZIP)", permissions=["view"])
    def download_csvs(self, request: HttpRequest, queryset: Any) -> HttpResponse:
        """One CSV per selected invoice in a ZIP file (at most 500: a bigger export is a job)."""
        import io
        import zipfile

        from tarifa.billing.render import invoice_csv

        invoices = list(queryset.select_related("customer", "issuer", "credited_invoice")[:501])
        if len(invoices) > 500:
            raise PermissionDenied("Invoices selected: more than 500 is refused: select at most 500 at once")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for invoice in invoices:
                archive.writestr(f"{invoice.number}.csv", invoice_csv(invoice))
        return _attachment(out.getvalue(), "application/zip", "invoices.zip")

    def download_pdf(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from tarifa.billing.pdfs import stored_pdf

        invoice = self._downloadable(request, object_id)
        return _attachment(stored_pdf(invoice), "application/pdf", f"{invoice.number}.pdf")

    def download_csv(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from tarifa.billing.render import invoice_csv

        invoice = self._downloadable(request, object_id)
        return _attachment(invoice_csv(invoice).encode(), "text/csv; charset=utf-8", f"{invoice.number}.csv")


def _attachment(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@admin.register(MinutePoolUsage)
class MinutePoolUsageAdmin(ReadOnlyAdmin):
    list_display = ("account", "pool_key", "period_start", "seconds_used", "carried_seconds")
    search_fields = ("account__name", "account__account_code", "pool_key")
    list_filter = ("period_start",)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(TarifaAdmin):
    """Saved payment methods: made by the gateway (the customer gives card data to it, never to Tarifa).
    Staff see brand, last digits and expiry, choose the default or deactivate one; the gateway's token is
    never shown or exported (tarifa.sensitive)."""

    list_display = ("customer", "gateway", "brand", "last4", "expiry_month", "expiry_year", "is_default", "active")
    list_filter = ("gateway", "active")
    search_fields = ("customer__company", "customer__account_code", "last4")
    fields = ("customer", "gateway", "brand", "last4", "expiry_month", "expiry_year", "is_default", "active")
    readonly_fields = ("customer", "gateway", "brand", "last4", "expiry_month", "expiry_year")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ServiceCharge)
class ServiceChargeAdmin(ReadOnlyAdmin):
    """The service charges the worker posted (tarifa.services.recurring): read-only, like the ledger."""

    list_display = (
        "period_start",
        "period_end",
        "service_kind",
        "service_id",
        "kind",
        "amount",
        "customer",
        "account",
        "reference",
    )
    search_fields = ("reference", "customer__company", "account__name", "account__account_code")
    list_filter = (("service_kind", ChoicesDropdownFilter), ("kind", ChoicesDropdownFilter), "period_start")


# --- payments (docs/payments.md) ---------------------------------------------------------------------


@admin.register(PaymentAllocation)
class PaymentAllocationAdmin(ReadOnlyAdmin):
    """Which invoices each payment paid (append-only; a refund appends negative rows)."""

    list_display = ("created_at", "invoice", "source", "amount", "refund")
    search_fields = ("invoice__number", "source__reference", "invoice__customer__company")

    def get_urls(self) -> list[Any]:
        from django.urls import path

        own = [
            path(
                "receivables/",
                self.admin_site.admin_view(self.receivables_view),
                name="billing_receivables",
            )
        ]
        return own + super().get_urls()

    def receivables_view(self, request: HttpRequest) -> Any:
        """Aged receivables of every customer (staff with the right to view invoices), or CSV."""
        from django.http import HttpResponse
        from django.template.response import TemplateResponse

        from tarifa.billing.statement import csv_text, parse_day, receivables, receivables_dataset
        from tarifa.core.payments import Refused
        from tarifa.core.statement import BUCKETS
        from tarifa.customers.models import Customer

        if not request.user.has_perm("billing.view_invoice"):
            raise PermissionDenied
        error = ""
        try:
            day = parse_day(request.GET.get("as_of"), "as of")
        except Refused as exc:
            error, day = str(exc), None
        rows = receivables(Customer.objects.all(), day)
        if request.GET.get("format") == "csv" and not error:
            response = HttpResponse(csv_text(receivables_dataset(rows)), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="receivables.csv"'
            return response
        query = request.GET.copy()
        query["format"] = "csv"
        context = {
            **self.admin_site.each_context(request),
            "title": "Aged receivables",
            "buckets": BUCKETS,
            "rows": [
                {
                    "customer": c,
                    "aging": a,
                    "amounts": [a.buckets[b] for b in BUCKETS],
                    "statement_url": reverse("admin:customers_customer_statement", args=[c.pk]),
                }
                for c, a in rows
            ],
            "as_of": request.GET.get("as_of", ""),
            "error": error,
            "csv_query": query.urlencode(),
        }
        return TemplateResponse(request, "billing/receivables.html", context)


@admin.register(AutoTopUp)
class AutoTopUpAdmin(TarifaAdmin):
    list_display = ("customer", "enabled", "threshold", "amount", "method", "declines", "next_attempt_at", "last_error")
    search_fields = ("customer__company", "customer__account_code")
    readonly_fields = ("declines", "next_attempt_at", "last_error")
    list_filter = ("enabled",)


@admin.register(GatewayCharge)
class GatewayChargeAdmin(ReadOnlyAdmin):
    """Every charge Tarifa asked the gateway for, with its outcome (the attempts of the top-ups)."""

    list_display = ("created_at", "customer", "purpose", "amount", "currency", "status", "charge_id", "message")
    search_fields = ("customer__company", "customer__account_code", "charge_id", "idempotency_key")
    list_filter = ("status", "purpose")
    exclude = ("method",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    """Gateway callbacks accepted (signature checked), once per event id, with what they did."""

    list_display = ("received_at", "gateway", "event_id", "kind", "charge_id", "outcome", "detail", "source_address")
    search_fields = ("event_id", "charge_id")
    list_filter = ("outcome", "gateway")


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(ReadOnlyAdmin):
    """The last invoice number each issuer used per year (written by the invoice run only)."""

    list_display = ("key", "issuer", "prefix", "year", "last")
    search_fields = ("key", "prefix")


@admin.register(WebhookHit)
class WebhookHitAdmin(ReadOnlyAdmin):
    """Callback requests counted for the per-address rate limit (the last minute's)."""

    list_display = ("at", "address")
    search_fields = ("address",)


@admin.register(InvoicePdf)
class InvoicePdfAdmin(ReadOnlyAdmin):
    """The PDFs stored for issued invoices and credit notes (by the invoice run or on first download;
    the invoice's own page downloads it)."""

    list_display = ("invoice", "amount_due", "sha256", "rendered_at")
    search_fields = ("invoice__number", "sha256")
    exclude = ("data",)


from tarifa.billing import admin_taxes as admin_taxes  # noqa: E402 - registers the tax, late-fee and deposit pages
