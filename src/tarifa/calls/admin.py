from django.contrib import admin

from tarifa.admin_base import ReadOnlyAdmin
from tarifa.calls.models import CallRate, ConfigVersion, Refusal, Reservation


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("call_id", "switch", "customer", "account", "amount", "max_duration", "created_at", "expires_at")
    search_fields = ("call_id", "customer__company", "account__name")
    list_filter = ("switch",)


@admin.register(Refusal)
class RefusalAdmin(ReadOnlyAdmin):
    list_display = ("day", "customer", "reason", "count")
    list_filter = ("reason", "day")
    search_fields = ("customer__company", "reason")


@admin.register(CallRate)
class CallRateAdmin(ReadOnlyAdmin):
    list_display = ("scope", "second", "count")
    search_fields = ("scope",)


@admin.register(ConfigVersion)
class ConfigVersionAdmin(ReadOnlyAdmin):
    list_display = ("id", "version")
