from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import action

from tarifa.admin_base import TarifaAdmin, text_filter
from tarifa.dids.models import Did, DidPlan, NpaNxx, OriginRate, PayphoneOrigin, VirtualNumber
from tarifa.forms import LabeledForm


class OriginRateInline(TabularInline):
    """Tiered origination: the plan's origin prefix -> rate table (docs/origination.md)."""

    model = OriginRate
    extra = 0
    fields = ("prefix", "rate", "toll_free")


@admin.register(DidPlan)
class DidPlanAdmin(TarifaAdmin):
    list_display = ("name", "monthly_fee", "setup_fee", "included_minutes", "inbound_rate", "lata_billing")
    search_fields = ("name",)
    inlines = (OriginRateInline,)
    fieldsets = (
        (None, {"fields": ("name", "description", "monthly_fee", "setup_fee", "included_minutes")}),
        ("Origination (blended rate, toll-free)", {
            "fields": ("inbound_rate", "inbound_interval_1", "inbound_interval_n", "toll_free_rate",
                       "payphone_surcharge"),
        }),
        ("LATA-based billing (US numbers)", {
            "fields": ("lata_billing", "lata_intra_intrastate", "lata_inter_intrastate", "lata_interstate",
                       "lata_intra_interstate"),
        }),
        ("Short-call penalty", {
            "fields": ("short_call_seconds", "short_call_threshold", "short_call_penalty", "short_call_mode"),
        }),
    )


@admin.register(OriginRate)
class OriginRateAdmin(TarifaAdmin):
    """Every plan's origin rates in one list (edited on the plan's page as well)."""

    list_display = ("plan", "prefix", "rate", "toll_free")
    search_fields = ("prefix", "plan__name")
    list_filter = ("plan", "toll_free")


@admin.register(PayphoneOrigin)
class PayphoneOriginAdmin(TarifaAdmin):
    list_display = ("prefix", "description")
    search_fields = ("prefix", "description")


class LataUploadForm(LabeledForm):  # refusals name field and value (tarifa.forms)
    file = forms.FileField(label="LATA file (CSV: npa_nxx,lata,state)")
    replace = forms.BooleanField(label="Also remove the NPA-NXX entries the file does not list", required=False)


@admin.register(NpaNxx)
class NpaNxxAdmin(TarifaAdmin):
    """The NPA-NXX -> LATA/state table, imported with "Import LATA file" (or ``tarifa lata import``)."""

    list_display = ("npa_nxx", "lata", "state")
    search_fields = ("npa_nxx", "lata", "state")
    list_filter = (text_filter("NPA-NXX starts with", "npa_nxx", "npa_nxx", "startswith"), "state")
    actions_list = ["lata_import"]

    @action(description="Import LATA file", url_path="lata-import", permissions=["add"])
    def lata_import(self, request: HttpRequest) -> HttpResponse:
        from tarifa.dids.origination import LataRejected, import_lata

        form = LataUploadForm(request.POST or None, request.FILES or None)
        problems: list[Any] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                done = import_lata(upload.read(), upload.name, replace=form.cleaned_data["replace"])
            except LataRejected as exc:
                problems = exc.problems
            else:
                messages.success(request, f"{upload.name}: {done.added} added, {done.changed} changed, "
                                          f"{done.removed} removed.")
                return redirect("admin:dids_npanxx_changelist")
        context = {**self.admin_site.each_context(request), "title": "Import LATA file", "form": form,
                   "problems": problems, "opts": self.model._meta}
        return TemplateResponse(request, "dids/lata_import.html", context)


@admin.register(Did)
class DidAdmin(TarifaAdmin):
    list_display = ("number", "country", "status", "account", "plan", "vendor", "monthly_cost", "activation_date")
    search_fields = ("number", "account__name", "account__account_code", "cost_center")
    list_filter = (
        text_filter("Number starts with", "number", "number", "startswith"),
        ("status", ChoicesDropdownFilter),
        "country",
        "vendor",
        "plan",
    )
    autocomplete_fields = ("account",)
    readonly_fields = ("country",)


@admin.register(VirtualNumber)
class VirtualNumberAdmin(TarifaAdmin):
    list_display = ("number", "primary_did", "account", "activation_date", "additional_charge")
    search_fields = ("number", "primary_did__number", "account__name")
    autocomplete_fields = ("account",)
