"""The portal's forms. Account settings and the profile are the back office's model forms limited
to a group's fields: the same fields, validators and model rules refuse the same values."""

from __future__ import annotations

import smtplib
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm, SetPasswordForm
from django.db.models import Q

from tarifa.billing.models import AutoTopUp, ServicePlan
from tarifa.customers.choices import CustomerKind, Status
from tarifa.customers.forms import AccountForm, CustomerForm
from tarifa.customers.models import Customer
from tarifa.customers.widgets import CountryListField, CountryPicker, LineListField
from tarifa.dids.models import Did
from tarifa.forms import LabeledErrorsMixin, LabeledForm, LabeledModelForm
from tarifa.notices.models import NoticeSettings
from tarifa.portal.access import PORTAL_KINDS, may_use_portal
from tarifa.portal.groups import Group
from tarifa.portal.signup import MAX_DIDS
from tarifa.throttle import service
from tarifa.throttle.forms import ThrottledLoginMixin, ThrottledOldPasswordMixin

__all__ = [
    "AutoTopUpForm",
    "LoginForm",
    "NoticeForm",
    "PasswordChange",
    "ProfileForm",
    "ResetForm",
    "ResetSetPassword",
    "SignupForm",
    "WhyForm",
    "settings_form",
]


class LoginForm(ThrottledLoginMixin, LabeledErrorsMixin, AuthenticationForm):
    """The portal's log-in: the customer's web user name and password, throttled and locked out like
    the back office's (tarifa.throttle). Staff and operator users are refused with the same message
    as a wrong password: the portal does not say which user names are staff. Its per-user-name count
    is the portal's own, so guesses here never lock a staff user out of the back office."""

    throttle_door = service.PORTAL
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "User name or password is refused: they do not match a customer's portal log-in "
        "(user names are case-sensitive)",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Web user name"
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})

    def confirm_login_allowed(self, user: Any) -> None:
        if not may_use_portal(user):
            raise self.get_invalid_login_error()
        super().confirm_login_allowed(user)


def portal_users() -> Any:
    """Users who may log in to the portal (the reset form mails only them)."""
    return get_user_model()._default_manager.filter(
        is_active=True, is_staff=False, is_superuser=False, customer__kind__in=PORTAL_KINDS
    )


class ResetForm(LabeledErrorsMixin, PasswordResetForm):
    """Asks for a reset link by user name or e-mail; the link goes to the customer's e-mail only,
    and the page says the same whether or not anyone matched. Counted per client address like
    failed log-ins, so the form cannot mail someone's inbox full."""

    email = forms.CharField(label="Web user name or e-mail", max_length=254)

    def __init__(self, *args: Any, request: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.request is not None and not self.errors:
            attempt = service.begin_attempt("", service.client_address(self.request), door=service.PORTAL)
            if isinstance(attempt, service.Lock):
                raise forms.ValidationError(attempt.message(), code="throttled")
            service.end_attempt(
                attempt, "", "failed", door=service.PORTAL
            )  # counted: a reset request is never a success
        return cleaned

    def get_users(self, email: str) -> Any:
        login = email.strip()
        for user in portal_users().filter(Q(username__iexact=login) | Q(email__iexact=login)):
            if user.has_usable_password() and user.email:
                yield user

    def send_mail(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().send_mail(*args, **kwargs)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailNotSent(str(exc)) from exc


class MailNotSent(Exception):
    """The SMTP server could not take the reset e-mail."""


class ResetSetPassword(LabeledErrorsMixin, SetPasswordForm):  # type: ignore[type-arg]
    """The new password of a reset link: the seed 003 rule (Django's validators, WebPasswordValidator)."""


class PasswordChange(LabeledErrorsMixin, ThrottledOldPasswordMixin, PasswordChangeForm):
    """The customer portal password (seed 001 security): the old one throttled like a log-in."""

    throttle_door = service.PORTAL


class ProfileForm(LabeledModelForm):
    """Name, address and billing contact: the customer model's own fields and rules."""

    class Meta:
        model = Customer
        fields = ["name", "company", "email", "address", "phone", "country", "pin"]


def _plain(field: forms.Field) -> forms.Widget:
    """A plain HTML widget for a form field (the back office's are the theme's)."""
    choices: Any = getattr(field, "choices", ())
    if isinstance(field, CountryListField):
        return CountryPicker(choices=choices)
    if isinstance(field, LineListField):
        return forms.Textarea(attrs={"rows": 4})
    if isinstance(field, forms.MultipleChoiceField | forms.ModelMultipleChoiceField):
        return forms.CheckboxSelectMultiple(choices=choices)
    if isinstance(field, forms.BooleanField):
        return forms.CheckboxInput()
    if isinstance(field, forms.ChoiceField | forms.ModelChoiceField):
        return forms.Select(choices=choices)
    if isinstance(field.widget, forms.PasswordInput):
        return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    if isinstance(field, forms.IntegerField | forms.DecimalField):
        return forms.TextInput(attrs={"inputmode": "decimal" if isinstance(field, forms.DecimalField) else "numeric"})
    return forms.TextInput()


def settings_form(group: Group) -> type[AccountForm]:
    """The back office's account form limited to one settings group's fields."""

    meta = type("Meta", (AccountForm.Meta,), {"fields": group.names})

    def __init__(self: AccountForm, *args: Any, **kwargs: Any) -> None:
        AccountForm.__init__(self, *args, **kwargs)
        for name in list(self.fields):
            if name not in group.names:
                del self.fields[name]  # the declared list fields of other groups
        for name, what in group.fields:
            field = self.fields[name]
            field.widget = _plain(field)
            field.help_text = what + (" Leave empty to keep the current one." if name == "sip_password" else "")

    return type(f"{group.slug.title()}SettingsForm", (AccountForm,), {"Meta": meta, "__init__": __init__})


class WhyForm(LabeledForm):
    """Try a number from one of the customer's accounts: the decision now, nothing reserved."""

    account = forms.ChoiceField(
        label="Account", error_messages={"invalid_choice": "Account %(value)s is refused: must be one of your accounts"}
    )
    number = forms.CharField(label="Number dialled", max_length=64)

    def __init__(self, *args: Any, accounts: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        account = self.fields["account"]
        assert isinstance(account, forms.ChoiceField)
        account.choices = [(str(a.pk), a.name) for a in accounts]


class AutoTopUpForm(LabeledModelForm):
    """Automatic top-up (billing.AutoTopUp): the model's own fields, validators and ``clean()``; the
    method is one of the customer's own active saved methods (another id is refused by name)."""

    class Meta:
        model = AutoTopUp
        fields = ["enabled", "threshold", "amount", "method"]
        help_texts = {
            "enabled": "When on, a prepaid balance that falls below the threshold is charged to the saved method.",
            "threshold": "Top up when the balance falls below this amount.",
            "amount": "The amount charged each time; choose one that lifts the balance well above the threshold.",
            "method": "Empty: your default saved method.",
        }

    def __init__(self, *args: Any, methods: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        method = self.fields["method"]
        assert isinstance(method, forms.ModelChoiceField)
        method.queryset = methods.filter(active=True)
        method.empty_label = "Default saved method"
        method.error_messages["invalid_choice"] = (
            "Method %(value)s is refused: must be one of your active saved payment methods"
        )
        for name in ("threshold", "amount"):
            self.fields[name].widget = forms.TextInput(attrs={"inputmode": "decimal"})


class NoticeForm(LabeledModelForm):
    """The customer's low-balance threshold and notice e-mails (notices.NoticeSettings)."""

    class Meta:
        model = NoticeSettings
        fields = ["low_balance_threshold", "emails"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["low_balance_threshold"].widget = forms.TextInput(attrs={"inputmode": "decimal"})
        self.fields["emails"].widget = forms.TextInput(attrs={"autocomplete": "email"})
        self.fields["low_balance_threshold"].help_text += " The home page warns below it too."


class SignupForm(CustomerForm):
    """Online sign-up: the back office's customer form (the same validators, the seed 003 rules for
    the web user name, the password policy, e-mail, company and country, and the model's ``clean``)
    limited to what a new customer types, plus a plan the operator offers and numbers to reserve.

    The customer is placed under the operator, inactive (its portal user too) until the e-mail link
    is followed, with the chosen plan's sign-up tariff and its currency."""

    plan = forms.ModelChoiceField(
        label="Service plan",
        queryset=ServicePlan.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Service plan %(value)s is refused: must be one of the plans offered"},
    )
    dids = forms.ModelMultipleChoiceField(
        label="Phone numbers (optional)",
        queryset=Did.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Phone number %(value)s is refused: it is no longer available"},
    )

    class Meta(CustomerForm.Meta):
        fields = ["name", "company", "web_username", "email", "phone", "country", "address"]  # type: ignore[assignment]

    def __init__(self, *args: Any, operator: Customer, plans: Any, numbers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operator = operator
        plan = self.fields["plan"]
        assert isinstance(plan, forms.ModelChoiceField)
        plan.queryset = plans
        dids = self.fields["dids"]
        assert isinstance(dids, forms.ModelMultipleChoiceField)
        dids.queryset = numbers
        dids.help_text = f"Up to {MAX_DIDS}; they are kept for you until you follow the e-mail's link."
        password = self.fields["web_password"]
        password.required = True
        password.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        password.help_text = (password.help_text or "").replace(" Leave empty to keep the current password.", "")
        self.fields["web_username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})
        self.fields["email"].widget.attrs.update({"autocomplete": "email"})
        if not numbers.exists():
            del self.fields["dids"]
        self.order_fields(["plan", "dids", *self.Meta.fields, "web_password"])

    def clean_dids(self) -> list[Any]:
        chosen = list(self.cleaned_data.get("dids") or [])
        if len(chosen) > MAX_DIDS:
            raise forms.ValidationError(
                f"Phone numbers {len(chosen)} chosen is refused: at most {MAX_DIDS}", code="max_dids"
            )
        return chosen

    def _post_clean(self) -> None:
        # before the model's clean: where a signed-up customer goes and what it is billed with
        customer = self.instance
        customer.parent = self.operator
        customer.kind = CustomerKind.CUSTOMER
        customer.status = Status.INACTIVE
        chosen = self.cleaned_data.get("plan")
        if chosen is not None and chosen.signup_tariff is not None:
            customer.tariff = chosen.signup_tariff
            customer.currency = chosen.signup_tariff.currency
        super()._post_clean()  # type: ignore[misc]  # Django's private hook; the stubs omit it
