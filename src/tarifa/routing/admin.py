from django.contrib import admin
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter

from tarifa.admin_base import TarifaAdmin, text_filter
from tarifa.rating.admin_decks import DeckAdminMixin
from tarifa.routing.models import (
    Connection,
    DestinationRate,
    DestinationSet,
    Pop,
    RouteOffer,
    RoutingEntry,
    RoutingGroup,
    Vendor,
)


class ConnectionInline(TabularInline):
    model = Connection
    fields = (
        "name",
        "host",
        "port",
        "transport",
        "tech_prefix",
        "emergency_format",
        "max_channels",
        "max_cps",
        "enabled",
    )
    extra = 0


@admin.register(Vendor)
class VendorAdmin(TarifaAdmin):
    list_display = ("name", "currency", "contact_email", "status")
    search_fields = ("name", "contact_email")
    list_filter = (("status", ChoicesDropdownFilter),)
    inlines = [ConnectionInline]


@admin.register(Connection)
class ConnectionAdmin(TarifaAdmin):
    list_display = ("name", "vendor", "host", "port", "transport", "tech_prefix", "max_channels", "max_cps", "enabled")
    search_fields = ("name", "host", "vendor__name")
    list_filter = ("vendor", ("transport", ChoicesDropdownFilter), "enabled")


@admin.register(DestinationSet)
class DestinationSetAdmin(DeckAdminMixin, TarifaAdmin):
    list_display = ("name", "vendor", "currency", "time_zone", "rounding")
    search_fields = ("name", "vendor__name")
    list_filter = ("vendor",)


@admin.register(DestinationRate)
class DestinationRateAdmin(TarifaAdmin):
    list_display = (
        "destination_set",
        "prefix",
        "destination",
        "price_1",
        "price_n",
        "interval_1",
        "interval_n",
        "effective_from",
        "forbidden",
    )
    search_fields = ("prefix", "destination")
    list_filter = (text_filter("Prefix starts with", "prefix", "prefix", "startswith"), "destination_set", "forbidden")


class RoutingEntryInline(TabularInline):
    model = RoutingEntry
    extra = 0


@admin.register(RoutingGroup)
class RoutingGroupAdmin(TarifaAdmin):
    list_display = ("name", "policy", "tariff", "description")
    search_fields = ("name",)
    list_filter = (("policy", ChoicesDropdownFilter),)
    inlines = [RoutingEntryInline]


@admin.register(RoutingEntry)
class RoutingEntryAdmin(TarifaAdmin):
    list_display = ("group", "connection", "destination_set", "priority", "weight", "enabled")
    list_filter = ("group", "enabled")
    search_fields = ("group__name", "connection__name")


@admin.register(Pop)
class PopAdmin(TarifaAdmin):
    list_display = ("name", "address", "description")
    search_fields = ("name", "address")


@admin.register(RouteOffer)
class RouteOfferAdmin(TarifaAdmin):
    list_display = ("destination_class", "choice", "tollfree_carrier", "routing_group")
    list_filter = ("destination_class", "choice")
