"""Back-office form "Simulate a call": the same decision trace as ``tarifa call simulate``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from unfold.decorators import action

from tarifa.calls.pops import default_pop, pop_names, pop_problem
from tarifa.forms import LabeledForm
from tarifa.validators import refuse


class SimulateForm(LabeledForm):  # refusals name field and value (tarifa.forms)
    callee = forms.CharField(label="Number dialled", max_length=64)
    caller = forms.CharField(label="Caller ID", max_length=64, required=False)
    source_ip = forms.GenericIPAddressField(label="Source IP", required=False)
    pop = forms.CharField(label="POP", max_length=64, required=False, widget=forms.Select)

    def __init__(self, *args: Any, account: Any = None, **kwargs: Any) -> None:
        """The POP is a select of the known POPs, the account's allowed ones first; an account
        restricted to exactly one POP has it pre-selected."""
        super().__init__(*args, **kwargs)
        self.account = account
        if account is None:
            return
        allowed, others = pop_names(account)
        restricted = account.pop_restriction.exists()
        choices: list[Any] = [("", "(no POP)")]
        if restricted:
            choices.append(("Allowed for this account", [(name, name) for name in allowed]))
            if others:
                choices.append(("Other POPs (refused for this account)", [(name, name) for name in others]))
        else:
            choices += [(name, name) for name in allowed]
        self.fields["pop"].widget.choices = choices
        self.fields["pop"].initial = default_pop(account)

    def clean_pop(self) -> str:
        pop: str = self.cleaned_data.get("pop") or ""
        why = pop_problem(self.account, pop) if self.account is not None else None
        if why:
            raise refuse("POP", pop, why, "unknown_pop")
        return pop


#: Who may simulate a call: the trace shows the account's balance and credit limit (view on the
#: account) and the vendors, connection addresses and buy prices that would carry the call (view on
#: routing.Connection, the permission that already guards vendor connection data). Attack report L2.
#: (A method, not Unfold's dotted form, which reads the permissions table when the admin loads.)
SIMULATE_PERMISSIONS = ["view", "view_vendor_connections"]


class SimulateCallMixin:
    def has_view_vendor_connections_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return bool(request.user.has_perm("routing.view_connection"))

    @action(description="Simulate a call", url_path="simulate-call", permissions=SIMULATE_PERMISSIONS)
    def simulate_call(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from tarifa.calls.authorize import simulate_for

        # The admin's own lookup: a malformed or unknown id is "doesn't exist", never a 500.
        if not self.has_view_vendor_connections_permission(request):  # never rely on one gate
            raise PermissionDenied
        account = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if account is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)  # type: ignore[attr-defined]
        form = SimulateForm(request.POST or None, account=account)
        decision = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            decision = simulate_for(
                account.account_code,
                data["callee"],
                caller=data["caller"],
                source_ip=data["source_ip"] or "",
                pop=data["pop"],
            )
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"Simulate a call: {account}",
            "target": account,
            "form": form,
            "decision": decision,
            "opts": self.model._meta,  # type: ignore[attr-defined]
        }
        return TemplateResponse(request, "calls/simulate.html", context)
