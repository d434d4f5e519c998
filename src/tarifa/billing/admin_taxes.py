"""Back office for the tax table, tax exemptions, late-fee policies and deposits (issue 15). Each form
is the model's own (its clean() applies the core's rules: one validation for every door); the deposit
page has a "Post or return deposit" action through :func:`tarifa.billing.deposits.move_deposit`, the
service ``tarifa deposit post|return`` calls."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action

from tarifa.admin_base import TarifaAdmin
from tarifa.billing.admin_payments import PERMISSION
from tarifa.billing.models import Deposit, LateFeePolicy, TaxExemption, TaxRate
from tarifa.core.money import shown_amount


@admin.register(TaxRate)
class TaxRateAdmin(TarifaAdmin):
    list_display = ("name", "flag", "order", "kind", "rate", "currency", "compound", "origin_country", "applies_to")
    list_filter = ("flag", "kind", "compound")
    search_fields = ("name",)
    autocomplete_fields = ("applies_to",)


@admin.register(TaxExemption)
class TaxExemptionAdmin(TarifaAdmin):
    list_display = ("customer", "reference", "valid_from", "valid_to")
    search_fields = ("reference", "customer__name", "customer__company")
    autocomplete_fields = ("customer",)


@admin.register(LateFeePolicy)
class LateFeePolicyAdmin(TarifaAdmin):
    list_display = ("operator", "currency", "percent", "fixed", "grace_days", "max_periods", "active")


class DepositMoveForm(forms.Form):
    """Plain text amount: the refusal comes from the core rule (field, value, rule)."""

    action = forms.ChoiceField(label="Action", choices=[("post", "Post a deposit"), ("return", "Return a deposit")])
    amount = forms.CharField(label="Amount", required=False)
    reference = forms.CharField(label="Reference", required=False, help_text="Receipt or ticket reference; unique.")
    reason = forms.CharField(label="Reason", required=False)


@admin.register(Deposit)
class DepositAdmin(TarifaAdmin):
    list_display = ("customer", "held", "interest_rate", "since", "auto_adjust", "months", "lookback")
    readonly_fields = ("held",)
    autocomplete_fields = ("customer",)
    actions_detail = ["move_deposit"]

    def has_add_payment_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm(PERMISSION)

    @action(description="Post or return deposit", url_path="move", permissions=["add_payment", "view"])  # type: ignore[untyped-decorator]
    def move_deposit(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from tarifa.billing.deposits import Refused, move_deposit
        from tarifa.core.payments import parse_amount

        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        deposit = self.get_object(request, object_id)
        if deposit is None:
            redirect: HttpResponse = self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
            return redirect
        form = DepositMoveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                posted = move_deposit(
                    deposit.customer,
                    data["action"],
                    parse_amount(data["amount"]),
                    reference=data["reference"],
                    reason=data["reason"],
                    actor=request.user.get_username(),
                    user_id=request.user.pk,
                )
            except Refused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.success(
                    request, f"Deposit {posted.amount:+} {posted.currency} posted (transaction {posted.pk})"
                )
                return HttpResponseRedirect(reverse("admin:billing_deposit_change", args=[deposit.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Post or return deposit: {deposit.customer}",
            "target": deposit,
            "held": shown_amount(deposit.held, deposit.customer.billing_decimals),
            "balance": shown_amount(deposit.customer.balance, deposit.customer.billing_decimals),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "billing/move_deposit.html", context)
