"""Back-office pages for the issuer identity (the operator's profile on its invoices) and the
resellers' white label (issues 15 and 16). The logo is uploaded as a file and stored in the
database after :func:`tarifa.core.images.logo_problem` accepts it (PNG or JPEG, at most 512 KB,
16 to 2,000 pixels a side)."""

from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from tarifa import validators as v
from tarifa.core.images import LOGO_MAX_BYTES, image_facts, logo_problem
from tarifa.customers.models import BrandingFields, IssuerProfile, ResellerBranding
from tarifa.forms import LabeledModelForm, labelled

__all__ = ["BrandingForm", "IssuerProfileAdmin", "ResellerBrandingAdmin"]


class BrandingForm(LabeledModelForm):
    """The branding fields plus a logo upload (checked from its bytes, never its name) and a way to
    remove the logo."""

    logo_upload = forms.FileField(
        label="Logo",
        required=False,
        help_text="PNG or JPEG, at most 512 KB, 16 to 2,000 pixels wide and high. Printed on invoices.",
    )
    remove_logo = forms.BooleanField(label="Remove the logo", required=False)

    def clean_logo_upload(self) -> Any:
        upload = self.cleaned_data.get("logo_upload")
        if not upload:
            return None
        if upload.size is not None and upload.size > LOGO_MAX_BYTES:
            raise v.refuse("Logo", upload.name, f"must be at most {LOGO_MAX_BYTES // 1024} KB", "logo")
        data = upload.read(LOGO_MAX_BYTES + 1)
        problem = logo_problem(data)
        if problem:
            raise v.refuse("Logo", upload.name, problem, "logo")
        return data

    def save(self, commit: bool = True) -> Any:
        instance: BrandingFields = super().save(commit=False)
        data = self.cleaned_data.get("logo_upload")
        if data:
            facts = image_facts(data)
            instance.logo, instance.logo_type = data, facts.content_type if facts else ""
        elif self.cleaned_data.get("remove_logo"):
            instance.logo, instance.logo_type = b"", ""
        if commit:
            instance.save()
        return instance


class _BrandingAdmin(ModelAdmin):  # type: ignore[misc]
    form = BrandingForm
    readonly_fields = ("logo_preview",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        return labelled(super().get_form(request, obj, change, **kwargs))

    @admin.display(description="Current logo")
    def logo_preview(self, obj: BrandingFields) -> str:
        if not obj or not obj.logo or not obj.logo_type:
            return "none"
        encoded = base64.b64encode(bytes(obj.logo)).decode()
        return format_html(
            '<img src="data:{};base64,{}" alt="logo" style="max-height:60px;max-width:240px">', obj.logo_type, encoded
        )


_CONTACT = ("address", "tax_id", "email", "phone", "website", "payment_instructions")
_LOGO = ("logo_preview", "logo_upload", "remove_logo")


@admin.register(IssuerProfile)
class IssuerProfileAdmin(_BrandingAdmin):
    """One row: the operator's name, address, contact and logo on its invoices."""

    list_display = ("name", "email", "phone", "tax_id")
    fieldsets = ((None, {"fields": ("name", *_CONTACT)}), ("Logo", {"fields": _LOGO}))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not IssuerProfile.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ResellerBranding)
class ResellerBrandingAdmin(_BrandingAdmin):
    """A reseller's white label on its customers' invoices and portal."""

    list_display = ("reseller", "display_name", "email", "phone")
    search_fields = ("display_name", "reseller__company", "reseller__account_code")
    autocomplete_fields = ("reseller",)
    fieldsets = ((None, {"fields": ("reseller", "display_name", *_CONTACT)}), ("Logo", {"fields": _LOGO}))
