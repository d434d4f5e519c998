from django.contrib import admin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateTimeFilter

from tarifa.admin_base import ReadOnlyAdmin, text_filter
from tarifa.cdrs.models import Cdr, IngestRun, RerateRun


@admin.register(Cdr)
class CdrAdmin(ReadOnlyAdmin):
    list_display = (
        "start_time",
        "customer",
        "account",
        "caller",
        "callee",
        "destination",
        "duration",
        "billed_seconds",
        "price",
        "cost",
        "margin",
        "disposition",
        "rating_status",
        "unrated_reason",
    )
    search_fields = ("call_id", "caller", "callee", "number", "source_ip")  # a whole IP matches exactly (TarifaAdmin)
    list_filter = (
        text_filter("Callee starts with", "callee", "callee", "startswith"),
        ("rating_status", ChoicesDropdownFilter),
        ("disposition", ChoicesDropdownFilter),
        "unrated_reason",
        ("start_time", RangeDateTimeFilter),
        "switch",
    )
    date_hierarchy = "start_time"
    list_select_related = ("customer", "account")


@admin.register(IngestRun)
class IngestRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "source",
        "switch",
        "format",
        "received",
        "stored",
        "duplicates",
        "rejected",
        "unrated",
        "charged",
        "started_by",
    )
    search_fields = ("source", "switch", "started_by")
    list_filter = ("format", "switch")


@admin.register(RerateRun)
class RerateRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "started_by",
        "reason",
        "criteria",
        "examined",
        "changed",
        "still_unrated",
        "adjustment_total",
    )
    search_fields = ("started_by", "reason")
