from functools import partial
from typing import Any

from django.contrib import admin
from django.contrib.admin.checks import InlineModelAdminChecks
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.forms import BaseModelFormSet, modelformset_factory
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import action

from tarifa.admin_base import TarifaAdmin, protected_refusal, text_filter
from tarifa.billing.admin_payments import AddMoneyMixin
from tarifa.calls.admin_simulate import SimulateCallMixin
from tarifa.customers.forms import AccountForm, CustomerForm, SipDeviceForm
from tarifa.customers.models import Account, Customer, DialingRoute, IpDevice, SipDevice, TranslationRule
from tarifa.dids.models import Did, VirtualNumber

#: "Log in as" a customer on the portal (the audit app's ViewAsSession permission; portal/viewas.py).
LOG_IN_AS_PERMISSION = "audit.log_in_as"


class AccountInline(TabularInline):
    """The customer's accounts: SIP users, trunks (with maximum channels), PBX extensions (with
    their PBX), IP and DID accounts. The full settings are on the account's own page."""

    model = Account
    # wt-recurring adds service_plan / activation_date / cancellation_date to the services: the
    # lead adds them to these service inlines at merge.
    fields = ("name", "kind", "identifier", "pbx", "max_channels", "status")
    extra = 0
    show_change_link = True

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["formfield_callback"] = partial(self.formfield_for_dbfield, request=request, customer=obj)
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        customer = kwargs.pop("customer", None)
        if db_field.name == "pbx":
            # The PBX an extension belongs to: an IP device of the customer or of the reseller or
            # operator above it (Account.clean's rule), never another tenant's.
            codes = customer.path.strip("/").split("/") if customer is not None and customer.path else []
            kwargs["queryset"] = IpDevice.objects.filter(account__customer__account_code__in=codes)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


# --- services of the customer's accounts on the customer's one page (seed 002) ------------------


class CustomerServicesFormSet(BaseModelFormSet):
    """An inline formset for records that hang under the customer's *accounts* (IP devices, SIP
    devices, virtual numbers): Django's inlines need a foreign key to the page's model, these
    have one to Account. Rows are the customer's only; each account (and primary DID) choice is
    limited to the customer's, so a forged id of another tenant's account is "not a valid choice";
    every row is validated by its model's full_clean like on its own page."""

    customer_lookup: str = "account__customer"
    model: type[Model]

    def __init__(
        self,
        data: Any = None,
        files: Any = None,
        instance: Customer | None = None,
        save_as_new: bool = False,
        prefix: str | None = None,
        queryset: QuerySet | None = None,
        **kwargs: Any,
    ) -> None:
        self.instance = instance
        self.save_as_new = save_as_new
        if queryset is None:
            queryset = self.model._default_manager.all()
        if instance is None or instance.pk is None:
            queryset = queryset.none()
        else:
            queryset = queryset.filter(**{self.customer_lookup: instance})
        super().__init__(data, files, prefix=prefix, queryset=queryset, **kwargs)

    @classmethod
    def get_default_prefix(cls) -> str:
        opts = cls.model._meta
        return f"{opts.app_label}-{opts.model_name}"

    def clean(self) -> None:
        """A row whose deletion would take protected records along (the IP device that is still an
        extension's PBX) is refused here, as the record's own delete page does, never a crash."""
        super().clean()
        problems = []
        for form in self.deleted_forms:
            instance = form.instance
            if instance.pk is None:
                continue
            problem = protected_refusal(instance)
            if problem is not None:
                problems.append(problem)
        if problems:
            raise ValidationError(problems)


class _ServicesInlineChecks(InlineModelAdminChecks):
    """Django's check that an inline has a foreign key to the page's model does not apply: these
    rows reach the customer through their account (:class:`CustomerServicesFormSet`)."""

    def _check_relation(self, obj: Any, parent_model: Any) -> list[Any]:
        return []

    def _check_exclude_of_parent_model(self, obj: Any, parent_model: Any) -> list[Any]:
        return []


class CustomerServicesInline(TabularInline):
    """An inline of one kind of the customer's services (see :class:`CustomerServicesFormSet`).

    ``limits`` maps each relation field of the row to its path to the customer: the choices offered
    (and accepted) are the customer's. Permissions are the model's own, as on its own page."""

    formset = CustomerServicesFormSet
    checks_class = _ServicesInlineChecks
    extra = 0
    show_change_link = True
    limits: dict[str, str] = {"account": "customer"}
    customer_lookup = "account__customer"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A new customer has no accounts yet: its services are added once it is saved."""
        return obj is not None and super().has_add_permission(request, obj)

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        fields = kwargs.pop("fields", None) or flatten_fieldsets(self.get_fieldsets(request, obj))
        exclude = [*(self.get_exclude(request, obj) or ()), *self.get_readonly_fields(request, obj)]
        can_change = self.has_change_permission(request, obj)
        can_add = self.has_add_permission(request, obj)
        base_form = self.form

        class PermittedForm(base_form):  # type: ignore[misc,valid-type]
            """As Django's inline forms: what the user may not add or change is never saved."""

            def has_changed(self) -> bool:
                if not can_change and not self.instance._state.adding:
                    return False
                if not can_add and self.instance._state.adding:
                    return False
                return bool(super().has_changed())

        formset = modelformset_factory(
            self.model,
            form=PermittedForm,
            formset=self.formset,
            fields=fields,
            exclude=exclude or None,
            formfield_callback=partial(self.formfield_for_dbfield, request=request, customer=obj),
            extra=self.get_extra(request, obj),
            min_num=self.get_min_num(request, obj),
            max_num=self.get_max_num(request, obj),
            can_delete=self.can_delete and self.has_delete_permission(request, obj),
        )
        formset.customer_lookup = self.customer_lookup  # type: ignore[attr-defined]
        return formset

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        customer = kwargs.pop("customer", None)
        lookup = self.limits.get(db_field.name)
        if lookup is not None:
            model: type[Model] = db_field.related_model
            kwargs["queryset"] = (
                model._default_manager.filter(**{lookup: customer})
                if customer is not None and customer.pk
                else model._default_manager.none()
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class CustomerIpDeviceInline(CustomerServicesInline):
    """IP addresses: all traffic from the address is billed to the account."""

    model = IpDevice
    fields = ("address", "account", "description", "dial_prefix", "max_call_sessions", "calls_per_second", "status")
    verbose_name_plural = "IP addresses (all traffic from the address is billed to the account)"


class CustomerSipDeviceInline(CustomerServicesInline):
    """SIP devices with their extensions."""

    model = SipDevice
    form = SipDeviceForm
    fields = ("login", "secret", "account", "extension", "voicemail", "ip_address", "status")
    verbose_name_plural = "SIP devices and extensions"


class CustomerVirtualNumberInline(CustomerServicesInline):
    """Virtual numbers sharing a primary DID's rates (validated by VirtualNumber.clean)."""

    model = VirtualNumber
    fields = ("number", "primary_did", "account", "activation_date", "additional_charge")
    limits = {"account": "customer", "primary_did": "account__customer"}


class CustomerDidInline(CustomerServicesInline):
    """The customer's DIDs, listed with links: assigning and releasing is the DID inventory's."""

    model = Did
    fields = ("number", "status", "account", "plan", "activation_date")
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "DIDs (assign and release from the DID inventory)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DialingRouteInline(TabularInline):
    model = DialingRoute
    extra = 0


class TranslationRuleInline(TabularInline):
    model = TranslationRule
    fk_name = "customer"
    fields = ("kind", "priority", "match", "replace", "dst_prefix", "active")
    extra = 0


@admin.register(Customer)
class CustomerAdmin(AddMoneyMixin, TarifaAdmin):
    form = CustomerForm
    actions_detail = ["add_money", "statement", "log_in_as"]

    def has_log_in_as_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm(LOG_IN_AS_PERMISSION)

    @action(description="Log in as", url_path="log-in-as", permissions=["log_in_as"])
    def log_in_as(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Open the customer's portal as the customer (portal/viewas.py confirms, records and checks again)."""
        return redirect("portal:view_as", int(object_id) if object_id.isdigit() else 0)

    list_display = (
        "account_code",
        "company",
        "name",
        "web_username",
        "kind",
        "billing_type",
        "balance",
        "credit_limit",
        "status",
    )
    search_fields = (
        "company",
        "name",
        "web_username",
        "account_code",
        "email",
        "accounts__account_code",
        "accounts__ipdevices__address",
        "accounts__sipdevices__login",
    )
    list_filter = (
        text_filter("Company", "company", "company"),
        text_filter("User name", "user_name", "web_username"),
        text_filter("Name", "name", "name"),
        text_filter("IP address", "ip_address", "accounts__ipdevices__address"),
        text_filter("Account ID", "account_id", "accounts__account_code"),
        text_filter("SIP user", "sip_user", "accounts__sipdevices__login"),
        ("status", ChoicesDropdownFilter),
        ("kind", ChoicesDropdownFilter),
        ("billing_type", ChoicesDropdownFilter),
        ("customer_type", ChoicesDropdownFilter),
    )
    readonly_fields = ("account_code", "balance", "path")
    autocomplete_fields = ("parent", "tariff")
    inlines = [
        AccountInline,
        CustomerIpDeviceInline,
        CustomerSipDeviceInline,
        CustomerDidInline,
        CustomerVirtualNumberInline,
        DialingRouteInline,
        TranslationRuleInline,
    ]

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """The services inlines come once the customer exists (they hang under its accounts)."""
        inlines = list(super().get_inlines(request, obj))
        return inlines if obj is not None else [i for i in inlines if not issubclass(i, CustomerServicesInline)]

    def formfield_for_choice_field(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        """The admin lists a required choice without a blank option, so a browser submits the
        first country (Afghanistan) for a customer nobody placed: Country starts blank and an
        empty one is refused "Country is required"."""
        if db_field.name == "country":
            kwargs["choices"] = db_field.get_choices(include_blank=True)  # its blank_label first
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    fieldsets = (
        ("Customer", {"fields": ("account_code", "kind", "parent", "customer_type", "status", "name", "company")}),
        ("Web access", {"fields": ("web_username", "web_password")}),
        (
            "Billing",
            {
                "fields": (
                    "tariff",
                    "billing_type",
                    "currency",
                    "payment_term_days",
                    "credit_limit",
                    "billing_decimals",
                    "tax_flag",
                    "tax_rate",
                    "daily_spending_limit",
                    "monthly_spending_limit",
                    "time_zone",
                    "balance",
                )
            },
        ),
        (
            "Calls",
            {
                "fields": (
                    "max_call_sessions",
                    "calls_per_second",
                    "codec_checking",
                    "codecs",
                    "call_with_media",
                    "deny_loss_routes",
                    "max_call_duration",
                )
            },
        ),
        ("Contact", {"fields": ("email", "address", "phone", "country", "pin")}),
    )


class IpDeviceInline(TabularInline):
    model = IpDevice
    extra = 0


class SipDeviceInline(TabularInline):
    model = SipDevice
    form = SipDeviceForm
    extra = 0


@admin.register(Account)
class AccountAdmin(SimulateCallMixin, TarifaAdmin):
    form = AccountForm
    actions_detail = ["simulate_call"]
    list_display = ("account_code", "name", "customer", "kind", "identifier", "balance_mode", "dialing_mode", "status")
    search_fields = (
        "account_code",
        "name",
        "identifier",
        "customer__company",
        "sipdevices__login",
        "ipdevices__address",
    )
    list_filter = (
        ("kind", ChoicesDropdownFilter),
        ("status", ChoicesDropdownFilter),
        ("dialing_mode", ChoicesDropdownFilter),
        "allow_international",
    )
    readonly_fields = ("account_code", "balance", "blocked_for_unpaid")
    autocomplete_fields = ("customer", "tariff", "pbx")  # pbx: Account.clean refuses another tenant's
    filter_horizontal = ("pop_restriction",)
    inlines = [IpDeviceInline, SipDeviceInline]
    fieldsets = (
        (
            "Account",
            {
                "fields": (
                    "account_code",
                    "customer",
                    "name",
                    "kind",
                    "identifier",
                    "pbx",
                    "status",
                    "tariff",
                    "service_plan",
                    "activation_date",
                    "cancellation_date",
                    "blocked_for_unpaid",
                    "balance_mode",
                    "balance",
                    "max_channels",
                )
            },
        ),
        ("Routing", {"fields": ("domestic_route", "international_route", "tollfree_route", "tollfree_carrier")}),
        (
            "Restrictions",
            {
                "fields": (
                    "allow_411",
                    "allow_international",
                    "allow_premium_rate",
                    "max_call_time_domestic",
                    "max_call_time_international",
                    "international_rate_cap",
                    "allowed_countries",
                )
            },
        ),
        (
            "General",
            {"fields": ("e911_caller_id", "dialing_mode", "caller_id_number", "voicemail_enabled", "music_on_hold")},
        ),
        ("Security", {"fields": ("sip_password", "ip_restriction", "pop_restriction")}),
        ("Inbound", {"fields": ("inbound_protocol", "device_type")}),
        ("Notifications", {"fields": ("balance_threshold", "notification_emails")}),
        ("Default DID routing", {"fields": ("default_did_plan", "cnam_lookup", "did_pop")}),
        (
            "Advanced",
            {
                "fields": (
                    "nat",
                    "dtmf_mode",
                    "allowed_codecs",
                    "encrypted_sip",
                    "max_expiry",
                    "rtp_timeout",
                    "rtp_hold_timeout",
                )
            },
        ),
    )


@admin.register(IpDevice)
class IpDeviceAdmin(TarifaAdmin):
    list_display = (
        "address",
        "account",
        "description",
        "dial_prefix",
        "max_call_sessions",
        "calls_per_second",
        "status",
    )
    search_fields = ("address", "description", "account__name", "account__account_code")
    list_filter = (("status", ChoicesDropdownFilter),)
    autocomplete_fields = ("account",)


@admin.register(SipDevice)
class SipDeviceAdmin(TarifaAdmin):
    form = SipDeviceForm
    list_display = ("login", "account", "extension", "voicemail", "ip_address", "status")
    search_fields = ("login", "extension", "account__name", "account__account_code")
    list_filter = (("status", ChoicesDropdownFilter), "voicemail")
    autocomplete_fields = ("account",)


@admin.register(DialingRoute)
class DialingRouteAdmin(TarifaAdmin):
    list_display = ("customer", "dialing_pattern", "routing_group", "priority")
    search_fields = ("customer__company", "dialing_pattern")
    autocomplete_fields = ("customer",)


@admin.register(TranslationRule)
class TranslationRuleAdmin(TarifaAdmin):
    list_display = ("kind", "customer", "connection", "priority", "match", "replace", "dst_prefix", "active")
    list_filter = (("kind", ChoicesDropdownFilter), "active")
    search_fields = ("match", "replace", "customer__company", "connection__name")
    autocomplete_fields = ("customer",)


from tarifa.customers import admin_branding  # noqa: E402,F401  (issuer profile and reseller white label pages)
