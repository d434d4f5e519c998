"""The back office's password-change page with the throttled form (Django's admin hard-wires its own)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.views import PasswordChangeView
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import reverse

from tarifa.throttle.forms import AdminPasswordChangeForm


class _PasswordChange(PasswordChangeView):
    form_class = AdminPasswordChangeForm

    def get_form(self, form_class: Any = None) -> Any:
        form: Any = super().get_form(form_class)
        form.request = self.request
        return form


def _password_change(request: HttpRequest) -> HttpResponseBase:
    """What ``AdminSite.password_change`` does, with the throttled form."""
    site = admin.site
    request.current_app = site.name
    view = _PasswordChange.as_view(
        success_url=reverse("admin:password_change_done", current_app=site.name),
        extra_context=site.each_context(request),
        **({"template_name": site.password_change_template} if site.password_change_template else {}),
    )
    return view(request)


admin_password_change = admin.site.admin_view(_password_change)
