from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from tarifa.admin_base import ReadOnlyAdmin, TarifaAdmin
from tarifa.api.models import ApiToken, RateWindow, hash_token, new_raw_token
from tarifa.core import scopes as sc
from tarifa.forms import LabeledModelForm


class ApiTokenForm(LabeledModelForm):
    scopes = forms.MultipleChoiceField(
        choices=list(sc.VOCABULARY.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="A switch's token: 'switch' only. Write implies read.",
    )

    class Meta:
        model = ApiToken
        fields = ("name", "operator", "switch", "customer", "scopes", "expires_at", "rate_limit", "active")


@admin.register(ApiToken)
class ApiTokenAdmin(TarifaAdmin):
    """Tokens are shown once, on creation (a message with the raw value); only their hash is kept.
    Revoke a token by unticking "active"."""

    form = ApiTokenForm
    list_display = (
        "name",
        "prefix",
        "operator",
        "switch",
        "customer",
        "scopes",
        "expires_at",
        "active",
        "created_at",
        "last_used_at",
    )
    list_filter = ("active", "operator", "switch")
    search_fields = ("name", "prefix")
    fields = (
        "name",
        "operator",
        "switch",
        "customer",
        "scopes",
        "expires_at",
        "rate_limit",
        "active",
        "prefix",
        "created_at",
        "last_used_at",
    )
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if not change:
            raw = new_raw_token()
            obj.key_hash, obj.prefix = hash_token(raw), raw[:8]
            messages.warning(request, f"Token for {obj.name}: {raw} — copy it now, it is not shown again.")
        super().save_model(request, obj, form, change)


@admin.register(RateWindow)
class RateWindowAdmin(ReadOnlyAdmin):
    """Requests counted per token and minute for the API's rate limit (the recent minutes)."""

    list_display = ("token", "minute", "count")
    search_fields = ("token__name",)
