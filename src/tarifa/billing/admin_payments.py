"""Back-office form "Add payment / credit / refund / adjustment" on the customer's page: the
same service and rule as ``tarifa payment add`` (:mod:`tarifa.billing.payments`)."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action

from tarifa.billing.choices import TRANSACTION_KIND_LABELS
from tarifa.core import payments as rule
from tarifa.customers.choices import BalanceMode

PERMISSION = "billing.add_payment"
#: The statement lists the customer's ledger (every Transaction): the ledger's own permission, not
#: merely "may view the customer" (attack finding 3).
STATEMENT_PERMISSION = "billing.view_transaction"


class MoneyForm(forms.Form):
    """Plain text fields: the refusals come from :mod:`tarifa.core.payments`, naming field,
    value and rule, rather than a form field's generic "Enter a number."."""

    kind = forms.ChoiceField(
        label="Kind",
        choices=[(k, TRANSACTION_KIND_LABELS.label(k)) for k in rule.KINDS],
        error_messages={"invalid_choice": "Kind %(value)r is refused: must be one of " + ", ".join(rule.KINDS)},
    )
    amount = forms.CharField(
        label="Amount", required=False, help_text="Positive; an adjustment may be negative (its sign is the direction)."
    )
    reference = forms.CharField(
        label="Reference", required=False, strip=False, help_text="Receipt, bank or ticket reference; unique."
    )
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Required for credits, refunds and adjustments.",
    )
    method = forms.ChoiceField(
        label="Method",
        required=False,
        choices=[("", "(not given)"), *((m, m) for m in rule.METHODS)],
        help_text="How the money moved.",
        error_messages={"invalid_choice": "Method %(value)r is refused: must be one of " + ", ".join(rule.METHODS)},
    )
    invoice = forms.CharField(
        label="Invoice",
        required=False,
        help_text="Invoice number to allocate a payment or credit to (default: the oldest open invoices first).",
    )
    account = forms.ChoiceField(
        label="Balance",
        required=False,
        help_text="The customer's balance, or that of one of its accounts with its own.",
    )

    def __init__(self, *args: object, accounts: list[tuple[str, str]] = (), **kwargs: object) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if accounts:
            cast(forms.ChoiceField, self.fields["account"]).choices = [("", "The customer's balance"), *accounts]
            self.fields["account"].error_messages["invalid_choice"] = (
                "Balance %(value)r is refused: must be the customer's or one of its own-balance accounts"
            )
        else:
            del self.fields["account"]


class AddMoneyMixin:
    """Adds the "Add payment" and "Statement" detail actions to a Customer admin."""

    def has_add_payment_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Unfold's check of a dotted permission reads the permissions table (and fails before
        the first migrate); a method keeps the check in code."""
        return request.user.has_perm(PERMISSION)

    def has_view_statement_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm(STATEMENT_PERMISSION)

    @action(description="Add payment / credit / refund", url_path="add-money", permissions=["add_payment", "view"])
    def add_money(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from tarifa.billing.payments import Refused, add_money, find_invoice

        if not request.user.has_perm(PERMISSION):  # the decorator checks too; never rely on one gate
            raise PermissionDenied
        # The admin's own lookup: a malformed (``abc``) or unknown id is "doesn't exist", never a 500.
        customer = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if customer is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)  # type: ignore[attr-defined]
        own = {str(a.pk): a for a in customer.accounts.filter(balance_mode=BalanceMode.OWN).order_by("name")}
        form = MoneyForm(request.POST or None, accounts=[(pk, f"{a} (balance {a.balance})") for pk, a in own.items()])
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                typed = data["invoice"].strip()
                chosen = find_invoice(customer, typed) if typed else None
                posted = add_money(
                    customer,
                    rule.MoneyRequest(
                        kind=data["kind"],
                        amount=rule.parse_amount(data["amount"]),
                        reference=data["reference"],
                        reason=data["reason"],
                        method=data["method"],
                    ),
                    actor=request.user.get_username(),
                    user_id=request.user.pk,
                    account=own.get(data.get("account") or ""),
                    invoice=chosen,
                )
            except Refused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.success(
                    request,
                    f"{posted.get_kind_display()} {posted.amount:+} {posted.currency} posted "
                    f"(transaction {posted.pk}, reference {posted.reference}); "
                    f"balance now {posted.balance_after}",
                )
                opts = self.model._meta  # type: ignore[attr-defined]
                return HttpResponseRedirect(
                    reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[customer.pk])
                )
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"Add payment, credit, refund or adjustment: {customer}",
            "target": customer,
            "form": form,
            "opts": self.model._meta,  # type: ignore[attr-defined]
        }
        return TemplateResponse(request, "billing/add_money.html", context)

    @action(description="Statement", url_path="statement", permissions=["view_statement", "view"])
    def statement(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Statement of account for a date range (``?from=&to=``), as a page or CSV (``&format=csv``)."""
        from tarifa.billing.statement import csv_text, parse_day, statement_dataset
        from tarifa.billing.statement import statement as read_statement

        if not request.user.has_perm(STATEMENT_PERMISSION):  # the decorator checks too; never rely on one gate
            raise PermissionDenied

        customer = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if customer is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)  # type: ignore[attr-defined]
        error = ""
        st = None
        try:
            st = read_statement(
                customer, parse_day(request.GET.get("from"), "from"), parse_day(request.GET.get("to"), "to")
            )
        except rule.Refused as exc:
            error = str(exc)
        if st is not None and request.GET.get("format") == "csv":
            response = HttpResponse(csv_text(statement_dataset(customer, st)), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="statement-{customer.account_code}.csv"'
            return response
        query = request.GET.copy()
        query["format"] = "csv"
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"Statement of account: {customer}",
            "target": customer,
            "statement": st,
            "error": error,
            "start": request.GET.get("from", ""),
            "end": request.GET.get("to", ""),
            "csv_query": query.urlencode(),
            "opts": self.model._meta,  # type: ignore[attr-defined]
        }
        return TemplateResponse(request, "billing/statement.html", context)
