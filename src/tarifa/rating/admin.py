from django.contrib import admin
from unfold.contrib.filters.admin import ChoicesDropdownFilter

from tarifa.admin_base import TarifaAdmin, text_filter
from tarifa.rating.admin_decks import DeckAdminMixin
from tarifa.rating.models import Rate, Tariff


@admin.register(Tariff)
class TariffAdmin(DeckAdminMixin, TarifaAdmin):
    list_display = ("name", "currency", "time_zone", "rounding", "base", "owner")
    search_fields = ("name", "description")
    list_filter = (("rounding", ChoicesDropdownFilter), "currency")
    autocomplete_fields = ("base", "owner")


@admin.register(Rate)
class RateAdmin(TarifaAdmin):
    list_display = (
        "tariff",
        "prefix",
        "destination",
        "price_1",
        "price_n",
        "interval_1",
        "interval_n",
        "connect_fee",
        "effective_from",
        "effective_to",
        "period",
        "forbidden",
    )
    search_fields = ("prefix", "destination")
    list_filter = (
        text_filter("Prefix starts with", "prefix", "prefix", "startswith"),
        "tariff",
        "forbidden",
    )
    autocomplete_fields = ("tariff",)
