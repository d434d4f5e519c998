from typing import Any

from django.contrib import admin
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter

from tarifa.admin_base import TarifaAdmin, text_filter
from tarifa.billing.admin_payments import AddMoneyMixin
from tarifa.calls.admin_simulate import SimulateCallMixin
from tarifa.customers.forms import AccountForm, CustomerForm, SipDeviceForm
from tarifa.customers.models import Account, Customer, DialingRoute, IpDevice, SipDevice, TranslationRule


class AccountInline(TabularInline):
    model = Account
    fields = ("name", "kind", "identifier", "status")
    extra = 0
    show_change_link = True


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
    actions_detail = ["add_money"]
    list_display = (
        "account_code", "company", "name", "web_username", "kind", "billing_type", "balance", "credit_limit", "status",
    )
    search_fields = (
        "company", "name", "web_username", "account_code", "email",
        "accounts__account_code", "accounts__ipdevices__address", "accounts__sipdevices__login",
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
    inlines = [AccountInline, DialingRouteInline, TranslationRuleInline]

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
        ("Billing", {"fields": (
            "tariff", "billing_type", "currency", "payment_term_days", "credit_limit", "billing_decimals",
            "tax_flag", "tax_rate", "daily_spending_limit", "monthly_spending_limit", "time_zone", "balance",
        )}),
        ("Calls", {"fields": (
            "max_call_sessions", "calls_per_second", "codec_checking", "codecs", "call_with_media",
            "deny_loss_routes", "max_call_duration",
        )}),
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
    search_fields = ("account_code", "name", "identifier", "customer__company", "sipdevices__login", "ipdevices__address")
    list_filter = (
        ("kind", ChoicesDropdownFilter),
        ("status", ChoicesDropdownFilter),
        ("dialing_mode", ChoicesDropdownFilter),
        "allow_international",
    )
    readonly_fields = ("account_code", "balance", "blocked_for_unpaid")
    autocomplete_fields = ("customer", "tariff")
    filter_horizontal = ("pop_restriction",)
    inlines = [IpDeviceInline, SipDeviceInline]
    fieldsets = (
        ("Account", {"fields": (
            "account_code", "customer", "name", "kind", "identifier", "status", "tariff", "service_plan",
            "activation_date", "cancellation_date", "blocked_for_unpaid", "balance_mode", "balance", "max_channels",
        )}),
        ("Routing", {"fields": ("domestic_route", "international_route", "tollfree_route", "tollfree_carrier")}),
        ("Restrictions", {"fields": (
            "allow_411", "allow_international", "allow_premium_rate", "max_call_time_domestic",
            "max_call_time_international", "international_rate_cap", "allowed_countries",
        )}),
        ("General", {"fields": ("e911_caller_id", "dialing_mode", "caller_id_number", "voicemail_enabled", "music_on_hold")}),
        ("Security", {"fields": ("sip_password", "ip_restriction", "pop_restriction")}),
        ("Inbound", {"fields": ("inbound_protocol", "device_type")}),
        ("Notifications", {"fields": ("balance_threshold", "notification_emails")}),
        ("Default DID routing", {"fields": ("default_did_plan", "cnam_lookup", "did_pop")}),
        ("Advanced", {"fields": (
            "nat", "dtmf_mode", "allowed_codecs", "encrypted_sip", "max_expiry", "rtp_timeout", "rtp_hold_timeout",
        )}),
    )


@admin.register(IpDevice)
class IpDeviceAdmin(TarifaAdmin):
    list_display = ("address", "account", "description", "dial_prefix", "max_call_sessions", "calls_per_second", "status")
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
