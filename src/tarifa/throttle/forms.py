"""The throttle as a form mixin: put it first in the bases of any log-in or password-reset form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin import forms as admin_forms
from django.contrib.admin.forms import AdminAuthenticationForm

from tarifa.forms import LabeledErrorsMixin
from tarifa.throttle import service


class ThrottledLoginMixin:
    """Refuse a locked user name or address before the password is looked at; count failures.

    Works with any ``AuthenticationForm`` (it needs ``self.request`` and a ``username`` field). A
    password-reset form can use ``service.begin_attempt`` / ``service.end_attempt`` the same way.
    ``throttle_door`` names the door whose per-user-name count this form uses (``service.DOORS``).
    """

    request: Any
    cleaned_data: dict[str, Any]
    throttle_door: str = service.ADMIN

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        address = service.client_address(self.request)
        door = self.throttle_door
        attempt = service.begin_attempt(username, address, door=door)  # the check and the count, in one step
        if isinstance(attempt, service.Lock):
            raise forms.ValidationError(attempt.message(), code="throttled")
        outcome = "void"
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except forms.ValidationError as error:
            if getattr(error, "code", None) == "invalid_login":
                outcome = "failed"
                lock = service.lock_for(username, address, door=door)
                if lock is not None:
                    raise forms.ValidationError(
                        [error, forms.ValidationError(lock.message(), code="throttled")]
                    ) from None
            raise
        else:
            if getattr(self, "user_cache", None) is not None:
                outcome = "succeeded"
            return cleaned
        finally:
            service.end_attempt(attempt, username, outcome, door=door)


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The back office's log-in form, throttled."""


class ThrottledOldPasswordMixin:
    """The same throttle on a password-change form's "old password": with someone else's open
    session, that field would otherwise let a person guess the password without limit.

    The view sets ``form.request`` (``PasswordChangeForm`` takes no request)."""

    request: Any
    user: Any
    throttle_door: str = service.ADMIN

    def clean_old_password(self) -> str:
        username = self.user.get_username()
        address = service.client_address(self.request)
        door = self.throttle_door
        attempt = service.begin_attempt(username, address, door=door)
        if isinstance(attempt, service.Lock):
            raise forms.ValidationError(attempt.message(), code="throttled")
        try:
            password = super().clean_old_password()  # type: ignore[misc]  # the form class mixed into supplies it
        except forms.ValidationError:
            raise  # a wrong old password: the try stays counted
        except BaseException:
            service.end_attempt(attempt, username, "void", door=door)
            raise
        # A right old password: this try was no failure. (Not a log-in: the user's earlier failures stay.)
        service.end_attempt(attempt, username, "void", door=door)
        return str(password)


class AdminPasswordChangeForm(LabeledErrorsMixin, ThrottledOldPasswordMixin, admin_forms.AdminPasswordChangeForm):
    """The back office's "change password" form, throttled; its refusals name the field (tarifa.forms)."""
