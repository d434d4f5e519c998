from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from tarifa.admin_base import TarifaAdmin
from tarifa.api.models import ApiToken, hash_token, new_raw_token


@admin.register(ApiToken)
class ApiTokenAdmin(TarifaAdmin):
    list_display = ("name", "prefix", "switch", "customer", "active", "created_at", "last_used_at")
    list_filter = ("active", "switch")
    search_fields = ("name", "prefix")
    fields = ("name", "switch", "customer", "active", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if not change:
            raw = new_raw_token()
            obj.key_hash, obj.prefix = hash_token(raw), raw[:8]
            messages.warning(request, f"Token for {obj.name}: {raw} — copy it now, it is not shown again.")
        super().save_model(request, obj, form, change)
