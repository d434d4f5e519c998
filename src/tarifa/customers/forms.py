"""The customer form: one validation for the admin, the API and bulk imports (seed 003)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from tarifa.customers.models import Customer
from tarifa.customers.validators import validate_web_password


class CustomerForm(forms.ModelForm):
    web_password = forms.CharField(
        label="Web access password", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="8 to 30 characters with at least one capital letter, one digit and one special character. "
        "Leave empty to keep the current password.",
    )

    class Meta:
        model = Customer
        fields = "__all__"

    def clean_web_password(self) -> str:
        password = self.cleaned_data.get("web_password") or ""
        if not password and not (self.instance.pk and self.instance.user_id):
            raise ValidationError("Web access password is required for a new customer", code="required")
        if password:
            validate_web_password(password)
        return password

    def _save_m2m(self) -> None:
        # Runs after the customer row is saved, both for ``save()`` and for the admin's
        # ``save(commit=False)`` + ``save_m2m()``: the one place the portal login is kept in step.
        super()._save_m2m()
        set_web_access(self.instance, self.cleaned_data.get("web_password") or None)


def set_web_access(customer: Customer, password: str | None) -> None:
    """Keep the portal login (a Django user) in step with the customer's web user name."""
    User = get_user_model()
    user = customer.user or User(username=customer.web_username)
    user.username = customer.web_username
    user.email = customer.email
    user.is_active = customer.status == "active"
    if password:
        user.set_password(password)
    elif user.pk is None:
        user.set_unusable_password()
    user.save()
    if customer.user_id != user.pk:
        customer.user = user
        customer.save(update_fields=["user"])


def form_errors(form: forms.Form) -> dict[str, list[str]]:
    """Errors as {field: [messages]}, for API problem details and import reports."""
    return {field: [str(m) for m in errors] for field, errors in form.errors.items()}


__all__: list[Any] = ["CustomerForm", "set_web_access", "form_errors"]
