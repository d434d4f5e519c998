"""Tariffs and their Rates (selling side). ``RateFields`` is shared with the vendor side's
Destination Set rates, so one definition of a rate's terms serves both (DESIGN.md §3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from tarifa import validators as v
from tarifa.core.deck import SINCE_EVER
from tarifa.core.periods import parse_period
from tarifa.core.rate_rules import AMOUNTS, DESTINATION, PERIOD, PREFIX_DIGITS, WHOLES
from tarifa.fields import (
    ExactDecimalField,
    LabeledCharField,
    NoControlCharacters,
    TimestampedModel,
    choice_field,
    int_field,
    money_field,
)
from tarifa.rating.choices import ROUNDING_LABELS, Rounding

__all__ = ["SINCE_EVER", "PricedList", "Rate", "RateFields", "Tariff", "since_ever"]


def since_ever() -> datetime:
    """Default ``effective_from``: a fixed past instant, so uniqueness works on every database."""
    return SINCE_EVER


validate_time_zone = v.validate_time_zone  # named by migrations


class PricedList(TimestampedModel):
    """What a tariff and a destination set have in common: a named list of rates."""

    name = LabeledCharField("name", max_length=100, unique=True)
    currency = LabeledCharField("currency", max_length=3, default="USD", validators=[v.Currency("Currency")])
    time_zone = LabeledCharField(
        "time zone",
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Time periods of the rates are evaluated in this zone.",
    )
    rounding = choice_field("Rounding", ROUNDING_LABELS, default=Rounding.HALF_UP)
    description = LabeledCharField("description", max_length=200, blank=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tariff(PricedList):
    owner = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="own_tariffs",
        help_text="Reseller that owns this tariff; empty: the operator's.",
    )
    base = models.ForeignKey(
        "self",
        verbose_name="base tariff",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="overrides",
        help_text="This tariff's rates override the base tariff's for their prefixes.",
    )

    def clean(self) -> None:
        super().clean()
        seen = {self.pk}
        node = self.base
        while node is not None:
            if node.pk in seen:
                raise ValidationError(
                    {"base": v.refuse("Base tariff", str(self.base), "would make a cycle of base tariffs")}
                )
            seen.add(node.pk)
            node = node.base
        if self.pk and self.currency:
            # The customers and accounts selling with this tariff bill in its currency.
            user = self.customers.exclude(currency=self.currency).first() or next(
                (
                    a.customer
                    for a in self.accounts.exclude(customer__currency=self.currency).select_related("customer")[:1]
                ),
                None,
            )
            if user is not None:
                raise ValidationError(
                    {
                        "currency": v.refuse(
                            "Currency",
                            self.currency,
                            f"customer {user.company!r} uses this tariff in {user.currency}",
                            "currency_mismatch",
                        )
                    }
                )


def _amount(name: str) -> ExactDecimalField:
    spec = AMOUNTS[name]
    return money_field(
        spec.label, places=spec.places, validators=[v.Between(spec.label, spec.low, spec.high, spec.unit)]
    )


def _whole(name: str, default: int) -> models.IntegerField:
    spec = WHOLES[name]
    return int_field(spec.label, spec.low, spec.high, spec.unit, default=default)


class RateFields(TimestampedModel):
    """The terms of one destination prefix (DESIGN.md §3)."""

    # Limits from tarifa.core.rate_rules, the table the deck parser reads too.
    prefix = LabeledCharField("prefix", max_length=PREFIX_DIGITS[1], validators=[v.Digits("Prefix", *PREFIX_DIGITS)])
    destination = LabeledCharField(
        DESTINATION.label,
        max_length=DESTINATION.max_length,
        blank=True,
        validators=[NoControlCharacters(DESTINATION.label.capitalize())],
    )
    price_1 = _amount("price_1")
    price_n = _amount("price_n")
    interval_1 = _whole("interval_1", default=60)
    interval_n = _whole("interval_n", default=60)
    connect_fee = _amount("connect_fee")
    free_seconds = _whole("free_seconds", default=0)
    grace_period = _whole("grace_period", default=0)
    post_call_surcharge = _amount("post_call_surcharge")
    min_charge = _amount("min_charge")
    effective_from = models.DateTimeField(
        "effective from", default=since_ever, help_text="1970-01-01 means: since ever."
    )
    effective_to = models.DateTimeField("effective to (exclusive)", null=True, blank=True)
    period = LabeledCharField(
        PERIOD.label,
        max_length=PERIOD.max_length,
        blank=True,
        help_text="e.g. mon-fri 08:00-18:00; empty: always.",
        validators=[NoControlCharacters(PERIOD.label.capitalize())],
    )
    forbidden = models.BooleanField("forbidden", default=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.prefix} {self.destination}".strip()

    def clean(self) -> None:
        super().clean()
        errors: dict[str, ValidationError] = {}
        if self.effective_from and self.effective_to and self.effective_from >= self.effective_to:
            errors.update(
                {
                    "effective_to": v.refuse(
                        "Effective to",
                        self.effective_to.isoformat(),
                        f"must be later than effective from ({self.effective_from.isoformat()})",
                        "effective_order",
                    )
                }
            )
        if self.period:
            try:
                parse_period(self.period)
            except ValueError as exc:
                errors["period"] = v.refuse("Time period", self.period, str(exc), "period")
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.price_n is None:
            self.price_n = self.price_1
        super().save(*args, **kwargs)


class Rate(RateFields):
    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="rates")

    class Meta:
        ordering = ["tariff", "prefix", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["tariff", "prefix", "period", "effective_from"],
                name="rate_unique_version",
            )
        ]
        indexes = [models.Index(fields=["tariff", "prefix"])]
