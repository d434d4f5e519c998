from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tarifa.admin_base import ReadOnlyAdmin
from tarifa.audit.models import AuditEntry, ViewAsSession


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read and filter the audit log; nobody adds, edits or deletes here (append-only)."""

    list_display = ("at", "actor", "via", "address", "action", "object_type", "object_id", "object_repr")
    list_filter = ("via", "action", "object_type", "at")
    search_fields = ("actor", "object_repr", "object_id", "address")
    date_hierarchy = "at"
    readonly_fields = (
        "at",
        "user",
        "token_id",
        "actor",
        "address",
        "via",
        "object_type",
        "object_id",
        "object_repr",
        "action",
        "before",
        "after",
    )

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(ViewAsSession)
class ViewAsSessionAdmin(ReadOnlyAdmin):
    """Every "log in as" session (who, when, which customer, from where, when it ended); read only."""

    list_display = ("started_at", "actor", "via", "customer_repr", "customer_id", "address", "ended_at")
    list_filter = ("via", "started_at")
    search_fields = ("actor", "customer_repr", "address")
    date_hierarchy = "started_at"
    readonly_fields = ("started_at", "ended_at", "user", "actor", "via", "customer_id", "customer_repr", "address")

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
