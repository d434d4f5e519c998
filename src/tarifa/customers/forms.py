"""The customers app's forms: one validation for the admin, the API and bulk imports (seed 003),
with secrets masked and list settings as lists (seed 001)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from unfold.widgets import UnfoldAdminPasswordWidget

from tarifa import validators as v
from tarifa.customers.choices import Status
from tarifa.customers.models import Account, Customer, SipDevice
from tarifa.customers.widgets import CodecListField, CountryListField, LineListField
from tarifa.forms import LabeledModelForm


class KeepSecretsMixin:
    """Secrets are typed into masked inputs that never send the stored value back to the browser;
    left empty when editing, the stored secret is kept (and not re-checked: an unrelated edit is
    never refused for an old secret)."""

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept_secrets: set[str] = set()
        for name in self.secret_fields:
            field = self.fields.get(name)  # type: ignore[attr-defined]
            if field is None:
                continue
            field.widget = UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"})
            if self.instance.pk:  # type: ignore[attr-defined]
                field.required = False
                field.help_text = ((field.help_text or "") + " Leave empty to keep the current one.").strip()

    def _clean_fields(self) -> None:
        super()._clean_fields()  # type: ignore[misc]
        for name in self.secret_fields:
            if name in self.cleaned_data and not self.cleaned_data[name] and self.instance.pk:  # type: ignore[attr-defined]
                stored = type(self.instance)._base_manager.filter(pk=self.instance.pk).values_list(name, flat=True)  # type: ignore[attr-defined]
                self.cleaned_data[name] = stored.first() or ""  # type: ignore[attr-defined]
                self._kept_secrets.add(name)

    def _get_validation_exclusions(self) -> set[str]:
        return set(super()._get_validation_exclusions()) | self._kept_secrets  # type: ignore[misc]


class CustomerForm(LabeledModelForm):
    web_password = forms.CharField(
        label="Web access password",
        required=False,
        strip=False,
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=f"8 to {v.WEB_PASSWORD_MAX} characters with at least one capital letter, one digit and one "
        "special character. Leave empty to keep the current password.",
    )
    codecs = CodecListField(label="Codec list")

    class Meta:
        model = Customer
        fields = "__all__"

    def clean_web_username(self) -> str:
        """The web user name is also the portal log-in: it may not be anyone else's log-in (a
        staff user such as ``admin``, or a login left behind), whatever its capitals."""
        username = self.cleaned_data.get("web_username") or ""
        clash = get_user_model().objects.filter(username__iexact=username)
        if self.instance.pk and self.instance.user_id:
            clash = clash.exclude(pk=self.instance.user_id)
        if username and clash.exists():
            raise v.refuse("Web access user name", username, "already in use", "unique")
        return username

    def clean_web_password(self) -> str:
        password = self.cleaned_data.get("web_password") or ""
        if not password and not (self.instance.pk and self.instance.user_id):
            raise ValidationError("Web access password is required for a new customer", code="required")
        if password:
            v.validate_web_password(password)
        return password

    def _save_m2m(self) -> None:
        # Runs after the customer row is saved, both for ``save()`` and for the admin's
        # ``save(commit=False)`` + ``save_m2m()``: the one place the portal login is kept in step.
        super()._save_m2m()  # type: ignore[misc]  # Django's private hook; the stubs omit it
        set_web_access(self.instance, self.cleaned_data.get("web_password") or None)


#: Seed 001 "Advanced": left empty, these take their default (RTP time-out 60 s, hold 600 s, 3600 s).
EMPTY_MEANS_DEFAULT = ("max_expiry", "rtp_timeout", "rtp_hold_timeout")


def _default_of(name: str) -> Any:
    """The model default of one of the account's own columns."""
    field = Account._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{name} is a relation, not a column of the account")
    return field.get_default()


class AccountForm(KeepSecretsMixin, LabeledModelForm):
    secret_fields = ("sip_password",)

    allowed_countries = CountryListField(
        label="Allowed countries",
        help_text="Choose regions or single countries; none chosen allows every country "
        "(international calls still need “allow international calls”).",
    )
    ip_restriction = LineListField(
        label="IP restriction",
        item_validator=v.IpNetworkList("IP restriction").check_item,
        help_text="One address or CIDR range per line, e.g. 192.0.2.0/24; empty: any.",
    )
    allowed_codecs = CodecListField(label="Allowed codecs", help_text="None chosen: allow all.")

    class Meta:
        model = Account
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in EMPTY_MEANS_DEFAULT:
            field = self.fields.get(name)
            if field is not None:
                default = _default_of(name)
                field.required = False
                field.help_text = f"Empty: {default} seconds."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        for name in EMPTY_MEANS_DEFAULT:
            if name in self.fields and name not in self.errors and cleaned.get(name) is None:
                cleaned[name] = _default_of(name)
        return cleaned


class SipDeviceForm(KeepSecretsMixin, LabeledModelForm):
    secret_fields = ("secret",)

    class Meta:
        model = SipDevice
        fields = "__all__"


def set_web_access(customer: Customer, password: str | None, *, hashed: str | None = None) -> None:
    """Keep the portal login (a Django user) in step with the customer's web user name; ``hashed``: a
    password already hashed by ``make_password`` (the demo hashes its one documented password once)."""
    User = get_user_model()
    user = customer.user or User(username=customer.web_username)
    user.username = customer.web_username
    user.email = customer.email
    user.is_active = customer.status == Status.ACTIVE
    if hashed:
        user.password = hashed
    elif password:
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


__all__: list[Any] = ["AccountForm", "CustomerForm", "SipDeviceForm", "form_errors", "set_web_access"]
