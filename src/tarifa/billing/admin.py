from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateFilter

from tarifa.admin_base import ReadOnlyAdmin, TarifaAdmin
from tarifa.billing.choices import InvoiceStatus
from tarifa.billing.models import IncludedMinutes, Invoice, InvoiceLine, MinutePoolUsage, ServicePlan, Transaction


class IncludedMinutesInline(TabularInline):
    model = IncludedMinutes
    extra = 0


@admin.register(ServicePlan)
class ServicePlanAdmin(TarifaAdmin):
    list_display = ("name", "recurring_fee", "period", "setup_fee", "billing_day", "active")
    search_fields = ("name",)
    list_filter = (("period", ChoicesDropdownFilter), "active")
    inlines = [IncludedMinutesInline]


@admin.register(IncludedMinutes)
class IncludedMinutesAdmin(TarifaAdmin):
    list_display = ("plan", "name", "minutes")
    search_fields = ("name", "plan__name")


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "account", "kind", "amount", "balance_after", "currency", "description",
                    "reference", "actor", "calls_link")

    @admin.display(description="Calls")
    def calls_link(self, obj: Transaction) -> str:
        """A call charge lists the CDRs it charged (CDR listing filtered by this Transaction)."""
        if obj.kind != "call_charge" or obj.cdr_id:
            return ""
        url = reverse("admin:cdrs_cdr_changelist") + f"?transaction__id__exact={obj.pk}"
        return format_html('<a href="{}">calls</a>', url)
    search_fields = ("customer__company", "customer__account_code", "description", "reference", "actor")
    list_filter = (("kind", ChoicesDropdownFilter), ("created_at", RangeDateFilter))
    date_hierarchy = "created_at"


class InvoiceLineInline(TabularInline):
    model = InvoiceLine
    extra = 0

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or obj.status == InvoiceStatus.DRAFT

    has_add_permission = has_change_permission  # type: ignore[assignment]
    has_delete_permission = has_change_permission


@admin.register(Invoice)
class InvoiceAdmin(TarifaAdmin):
    list_display = ("number", "customer", "period_start", "period_end", "status", "total", "currency", "due_date")
    search_fields = ("number", "customer__company", "customer__account_code")
    list_filter = (("status", ChoicesDropdownFilter), ("period_start", RangeDateFilter))
    inlines = [InvoiceLineInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.status != InvoiceStatus.DRAFT:
            return [f.name for f in Invoice._meta.fields if f.name != "status"]
        return super().get_readonly_fields(request, obj)


@admin.register(MinutePoolUsage)
class MinutePoolUsageAdmin(ReadOnlyAdmin):
    list_display = ("account", "pool_key", "period_start", "seconds_used")
    search_fields = ("account__name", "account__account_code", "pool_key")
    list_filter = ("period_start",)
