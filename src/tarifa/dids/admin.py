from django.contrib import admin
from unfold.contrib.filters.admin import ChoicesDropdownFilter

from tarifa.admin_base import TarifaAdmin, text_filter
from tarifa.dids.models import Did, DidPlan, VirtualNumber


@admin.register(DidPlan)
class DidPlanAdmin(TarifaAdmin):
    list_display = ("name", "monthly_fee", "setup_fee", "included_minutes", "inbound_rate")
    search_fields = ("name",)


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
    search_fields = ("number", "primary_did__number", "account__name", "account__customer__company")
    autocomplete_fields = ("account", "primary_did")  # VirtualNumber.clean: assigned DID, same customer
