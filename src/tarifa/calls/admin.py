from django.contrib import admin

from tarifa.admin_base import ReadOnlyAdmin
from tarifa.calls.models import Reservation


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("call_id", "switch", "customer", "account", "amount", "max_duration", "created_at", "expires_at")
    search_fields = ("call_id", "customer__company", "account__name")
    list_filter = ("switch",)
