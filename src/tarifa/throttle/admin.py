from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tarifa.admin_base import TarifaAdmin
from tarifa.throttle.models import LoginFailure


@admin.register(LoginFailure)
class LoginFailureAdmin(TarifaAdmin):
    """Failed log-ins: seen here, never added or edited; deleting a key's rows releases its lock early."""

    list_display = ("at", "scope", "key")
    list_filter = ("scope",)
    search_fields = ("key",)
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
