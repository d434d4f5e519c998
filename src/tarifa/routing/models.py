"""Vendors, their Connections and Destination Sets (buying side), Routing Groups, and POPs."""

from __future__ import annotations

from django.db import models

from tarifa import validators as v
from tarifa.customers.choices import ROUTE_CHOICE_LABELS, Status
from tarifa.customers.models import LabeledUniqueMixin
from tarifa.fields import LabeledCharField, LockedDeleteModel, TimestampedModel, choice_field, int_field
from tarifa.rating.models import PricedList, RateFields
from tarifa.routing.choices import ROUTING_POLICY_LABELS, RoutingPolicy, Transport


class Pop(LabeledUniqueMixin, TimestampedModel):
    """A point of presence: a switch node calls come from (POP restriction, seed 001)."""

    name = LabeledCharField("name", max_length=64, unique=True, validators=[v.Identifier("Name")])
    address = LabeledCharField("signalling address", max_length=100, blank=True)
    description = LabeledCharField("description", max_length=200, blank=True)

    class Meta:
        verbose_name = "POP"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Vendor(LabeledUniqueMixin, TimestampedModel):
    name = LabeledCharField("name", max_length=100, unique=True)
    currency = LabeledCharField("currency", max_length=3, default="USD", validators=[v.Currency("Currency")])
    contact_email = LabeledCharField(
        "contact e-mail", max_length=254, blank=True, validators=[v.Email("Contact e-mail")]
    )
    status = choice_field("Status", Status, default=Status.ACTIVE)
    notes = models.TextField("notes", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Connection(TimestampedModel, LockedDeleteModel):
    """A vendor gateway calls are sent to."""

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="connections")
    name = LabeledCharField("name", max_length=100)
    host = LabeledCharField("host", max_length=253, validators=[v.Host("Host")])
    port = int_field("Port", 1, 65535, default=5060)
    transport = choice_field("Transport", Transport, default=Transport.UDP)
    tech_prefix = LabeledCharField("tech prefix", max_length=15, blank=True)
    emergency_format = LabeledCharField(
        "emergency format",
        max_length=32,
        blank=True,
        validators=[v.EmergencyFormat("Emergency format")],
        help_text="How this connection wants emergency numbers (911, 112, ...): {number} is the number as dialled, "
        "e.g. *1{number}. Empty: the tech prefix, then the number. The connection's translation rules "
        "never apply to emergency numbers.",
    )
    max_channels = int_field("Maximum channels", 1, None, null=True, blank=True)
    max_cps = int_field("Maximum calls per second", 1, None, null=True, blank=True)
    with_media = models.BooleanField("with media", default=False)
    enabled = models.BooleanField("enabled", default=True)

    class Meta:
        ordering = ["vendor", "name"]
        constraints = [models.UniqueConstraint(fields=["vendor", "name"], name="connection_unique_name")]

    def __str__(self) -> str:
        return f"{self.vendor} / {self.name}"


class DestinationSet(PricedList):
    """Prefixes with the vendor's per-minute price: what a route costs us."""

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="destination_sets")
    billing_decimals = int_field("Billing decimals", 0, 6, default=6)


class DestinationRate(RateFields):
    destination_set = models.ForeignKey(DestinationSet, on_delete=models.CASCADE, related_name="rates")

    class Meta:
        ordering = ["destination_set", "prefix", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["destination_set", "prefix", "period", "effective_from"], name="destination_rate_unique_version"
            )
        ]
        indexes = [models.Index(fields=["destination_set", "prefix"])]


class RoutingGroup(LabeledUniqueMixin, TimestampedModel):
    name = LabeledCharField("name", max_length=100, unique=True)
    policy = choice_field("Policy", ROUTING_POLICY_LABELS, default=RoutingPolicy.LEAST_COST)
    tariff = models.ForeignKey(
        "rating.Tariff",
        verbose_name="tariff",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="routing_groups",
        help_text="Selling tariff for calls sent through this group (seed 001 value/premium routes).",
    )
    description = LabeledCharField("description", max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RoutingEntry(TimestampedModel):
    group = models.ForeignKey(RoutingGroup, on_delete=models.CASCADE, related_name="entries")
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="routing_entries")
    destination_set = models.ForeignKey(DestinationSet, on_delete=models.PROTECT, related_name="routing_entries")
    priority = int_field("Priority", 0, 1000, default=100)
    weight = int_field("Weight", 1, 1000, default=100)
    enabled = models.BooleanField("enabled", default=True)

    class Meta:
        verbose_name_plural = "routing entries"
        ordering = ["group", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["group", "connection", "destination_set"], name="routing_entry_unique")
        ]

    def __str__(self) -> str:
        return f"{self.group}: {self.connection} @ {self.destination_set}"


class RouteOffer(TimestampedModel):
    """What an account's routing choice means (seed 001): for a destination class and a choice
    (value or premium; for toll-free also the carrier), the routing group — and through the
    group's tariff, the selling price — used."""

    destination_class = LabeledCharField(
        "destination class",
        max_length=16,
        choices=[
            ("domestic", "Domestic"),
            ("international", "International"),
            ("tollfree", "Toll-free"),
            ("directory", "Directory (411)"),
            ("emergency", "Emergency"),
        ],
    )
    choice = LabeledCharField("choice", max_length=16, choices=ROUTE_CHOICE_LABELS.choices)
    tollfree_carrier = LabeledCharField(
        "toll-free carrier",
        max_length=16,
        blank=True,
        choices=[("", "Any"), ("default", "Server default"), ("us", "American carrier"), ("ca", "Canadian carrier")],
    )
    routing_group = models.ForeignKey(RoutingGroup, on_delete=models.PROTECT, related_name="offers")

    class Meta:
        ordering = ["destination_class", "choice"]
        constraints = [
            models.UniqueConstraint(
                fields=["destination_class", "choice", "tollfree_carrier"], name="route_offer_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.destination_class}/{self.choice}: {self.routing_group}"
