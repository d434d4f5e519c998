"""Back office of the invoice run: customers' billing profiles, the "Run invoices" page of the
invoice list and the "Issue credit note" action of an invoice. The same services as ``tarifa
invoice run`` and ``tarifa invoice credit`` (:mod:`tarifa.services.invoicing`), behind their own
permissions (billing.run_invoices, billing.credit_invoice)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action

from tarifa.admin_base import TarifaAdmin
from tarifa.billing.admin import InvoiceAdmin
from tarifa.billing.models import BillingProfile, Invoice

RUN = "billing.run_invoices"
CREDIT = "billing.credit_invoice"


@admin.register(BillingProfile)
class BillingProfileAdmin(TarifaAdmin):
    list_display = ("customer", "cycle", "day", "weekday", "every_days", "anchor", "discount_kind", "discount_value")
    search_fields = ("customer__company", "customer__account_code", "customer__web_username")
    list_filter = ("cycle", "discount_kind")
    autocomplete_fields = ("customer",)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in ("day", "weekday", "every_days"):
            field.required = False  # only the cycle's own field is needed: BillingProfile.clean says which
        return field


class RunForm(forms.Form):
    period = forms.CharField(
        label="Period",
        required=False,
        help_text="YYYY-MM or YYYY-MM-DD..YYYY-MM-DD: each customer's periods that end in these days. "
        "Empty: each customer's last ended period.",
    )
    customer = forms.CharField(
        label="Customer", required=False, help_text="Account code or web user name; empty: every customer."
    )


class CreditForm(forms.Form):
    amount = forms.CharField(label="Amount", help_text="Positive, at most what is left to credit on the invoice.")
    reason = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 2}))


class InvoiceRunAdmin(InvoiceAdmin):
    actions_list = ["run_invoices"]
    actions_detail = ["credit_note"]

    def has_run_invoices_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(RUN)

    def has_credit_note_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(CREDIT)

    def _page(self, request: HttpRequest, title: str, form: forms.Form, **extra: Any) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "title": title, "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "services/invoice_form.html", context | extra)

    @action(description="Run invoices", url_path="run", permissions=["run_invoices"])  # type: ignore[untyped-decorator]
    def run_invoices(self, request: HttpRequest) -> HttpResponse:
        from tarifa.core.invoicing import parse_period
        from tarifa.services.invoicing import run_invoices

        if not request.user.has_perm(RUN):  # the decorator checks too; never rely on one gate
            raise PermissionDenied
        form = RunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                wanted = parse_period(data["period"]) if data["period"].strip() else None
                result = run_invoices(period=wanted, customer=data["customer"].strip() or None)
            except ValueError as exc:  # PeriodNotEnded is one: nothing was issued
                form.add_error("period" if "Period" in str(exc) else "customer", str(exc))
            else:
                messages.success(request, result.summary())
                return HttpResponseRedirect(reverse("admin:billing_invoice_changelist"))
        return self._page(
            request,
            "Run invoices",
            form,
            submit="Run",
            back=reverse("admin:billing_invoice_changelist"),
            back_label="Invoices",
            explanation="Issues one invoice per customer and ended period that has none yet; periods already "
            "invoiced are left alone, so running it again issues nothing twice.",
        )

    @action(description="Issue credit note", url_path="credit", permissions=["credit_note"])  # type: ignore[untyped-decorator]
    def credit_note(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from tarifa.core.money import format_money
        from tarifa.services.invoicing import CreditRefused, credit_invoice, parse_amount

        if not request.user.has_perm(CREDIT):
            raise PermissionDenied
        invoice = self.get_object(request, object_id)
        if invoice is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)  # type: ignore[no-any-return]
        form = CreditForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                note = credit_invoice(
                    invoice.number,
                    parse_amount(form.cleaned_data["amount"]),
                    form.cleaned_data["reason"],
                    actor=request.user.get_username(),
                )
            except CreditRefused as exc:
                form.add_error("reason" if str(exc).startswith("Reason") else "amount", str(exc))
            else:
                places = invoice.customer.billing_decimals
                given = format_money(-note.total, note.currency, places)
                if note.tax:
                    net = format_money(-note.subtotal, note.currency, places)
                    given += f" ({net} net + {format_money(-note.tax, note.currency, places)} tax)"
                messages.success(request, f"Credit note {note.number} issued: {given} given back.")
                return HttpResponseRedirect(reverse("admin:billing_invoice_change", args=[note.pk]))
        return self._page(
            request,
            f"Issue a credit note for {invoice}",
            form,
            submit="Issue",
            back=reverse("admin:billing_invoice_change", args=[invoice.pk]),
            back_label=str(invoice),
            explanation=f"The invoice stays as issued (total "
            f"{format_money(invoice.total, invoice.currency, invoice.customer.billing_decimals)}); the credit note "
            "gets its own number, refers to it, and credits the customer's balance. The amount is tax included: "
            "on a taxed invoice it gives back net and tax in the invoice's proportions.",
        )


admin.site.unregister(Invoice)
admin.site.register(Invoice, InvoiceRunAdmin)
