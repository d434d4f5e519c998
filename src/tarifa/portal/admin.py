"""The back office's page of online sign-ups (read only: they change through the e-mail link and
``tarifa signups expire``)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tarifa.admin_base import ReadOnlyAdmin
from tarifa.portal.models import Signup


@admin.register(Signup)
class SignupAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "plan", "address", "expires_at", "verified_at", "expired_at")
    list_filter = ("created_at",)
    search_fields = ("customer__company", "customer__web_username", "customer__email", "address")
    readonly_fields = (
        "customer",
        "account",
        "plan",
        "did_plan",
        "dids",
        "address",
        "created_at",
        "expires_at",
        "verified_at",
        "expired_at",
    )

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
