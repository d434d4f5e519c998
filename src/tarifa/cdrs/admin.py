from django.contrib import admin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateTimeFilter

from tarifa.admin_base import ReadOnlyAdmin, text_filter
from tarifa.cdrs.models import Cdr


@admin.register(Cdr)
class CdrAdmin(ReadOnlyAdmin):
    list_display = (
        "start_time", "customer", "account", "caller", "callee", "destination", "duration", "billed_seconds",
        "price", "cost", "margin", "disposition", "rating_status", "unrated_reason",
    )
    search_fields = ("call_id", "caller", "callee", "number")
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
