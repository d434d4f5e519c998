"""The DID pool (seed 000), DID plans, and virtual numbers sharing a primary DID (seed 002)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from tarifa import validators as v
from tarifa.core.dids import DidState, effective_status, parts_of_stored
from tarifa.customers.models import LabeledUniqueMixin
from tarifa.dids.choices import DidDestination, DidStatus
from tarifa.fields import LabeledCharField, TimestampedModel, choice_field, int_field, money_field


class DidPlan(LabeledUniqueMixin, TimestampedModel):
    name = LabeledCharField("name", max_length=100, unique=True)
    monthly_fee = money_field("Monthly fee", minimum=0)
    setup_fee = money_field("Setup fee", minimum=0)
    included_minutes = int_field("Included inbound minutes", 0, None, default=0)
    inbound_rate = money_field("Inbound rate (per minute)", minimum=0)
    inbound_interval_1 = int_field("Inbound first interval", 1, 86400, "seconds", default=60)
    inbound_interval_n = int_field("Inbound next interval", 1, 86400, "seconds", default=60)
    description = LabeledCharField("description", max_length=200, blank=True)

    class Meta:
        verbose_name = "DID plan"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Did(LabeledUniqueMixin, TimestampedModel):
    number = LabeledCharField(
        "number (E.164 digits)", max_length=15, unique=True, validators=[v.Digits("Number", 4, 15)]
    )
    country = LabeledCharField("country", max_length=2, blank=True, editable=False)
    area_code = LabeledCharField(
        "area code", max_length=8, blank=True, editable=False, db_index=True,
        help_text="From libphonenumber: the geographic area code, else the mobile or toll-free code.",
    )
    local_number = LabeledCharField("local number", max_length=15, blank=True, editable=False)
    vendor = models.ForeignKey(
        "routing.Vendor", verbose_name="bought from", null=True, blank=True, on_delete=models.PROTECT,
        related_name="dids",
    )
    monthly_cost = money_field("Monthly cost", minimum=0)
    status = choice_field("Status", DidStatus, default=DidStatus.AVAILABLE)
    quarantine_until = models.DateField(
        "quarantined until", null=True, blank=True,
        help_text="A released number is available again from this day (TARIFA_DID_QUARANTINE_DAYS after release).",
    )
    account = models.ForeignKey(
        "customers.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="dids"
    )
    plan = models.ForeignKey(DidPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="dids")
    activation_date = models.DateField("activation date", null=True, blank=True)
    cost_center = LabeledCharField("location / cost center", max_length=100, blank=True)
    out_payment_rate = money_field("Out-payment rate (per minute)", minimum=0)
    mac_address = LabeledCharField(
        "MAC address", max_length=17, blank=True, validators=[v.MacAddress("MAC address")],
        help_text="Six hexadecimal pairs, e.g. 00:1A:2B:3C:4D:5E.",
    )
    username = LabeledCharField(
        "username", max_length=64, blank=True, validators=[v.Alphanumeric("Username")],
        help_text="The device's SIP user name for this number, if it has its own (letters and digits).",
    )
    password = LabeledCharField(
        "password", max_length=64, blank=True, validators=[v.SipSecret("Password")],
        help_text=f"The device's SIP password for this number: {v.SIP_SECRET_MIN} to 64 characters with a capital "
        "letter, a small letter and a digit. Never exported.",
    )
    destination = choice_field("Route calls to", DidDestination, default=DidDestination.ACCOUNT)
    sip_device = models.ForeignKey(
        "customers.SipDevice", null=True, blank=True, on_delete=models.SET_NULL, related_name="dids"
    )
    forward_number = LabeledCharField("forward number", max_length=15, blank=True)

    class Meta:
        verbose_name = "DID"
        ordering = ["number"]
        indexes = [models.Index(fields=["country", "area_code", "status"], name="did_search")]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        super().clean()
        errors = {}
        if self.status == DidStatus.ASSIGNED and not self.account_id:
            errors["account"] = v.refuse("Account", None, "an assigned DID needs an account")
        if self.account_id and self.status not in (DidStatus.ASSIGNED, DidStatus.DISABLED, DidStatus.PORTING):
            errors["status"] = v.refuse("Status", self.status, "a DID with an account must be assigned, porting or disabled")
        if self.status == DidStatus.QUARANTINED and self.quarantine_until is None:
            errors["quarantine_until"] = v.refuse("Quarantined until", None, "a quarantined DID needs the day it ends")
        if self.destination == DidDestination.FORWARD:
            try:
                v.Digits("Forward number", 3, 15)(self.forward_number)
            except ValidationError as exc:
                errors["forward_number"] = exc
        if self.destination == DidDestination.SIP_DEVICE and not self.sip_device_id:
            errors["sip_device"] = v.refuse("SIP device", None, "choose the SIP device calls go to")
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Country, area code and local number are derived from the number (libphonenumber), so
        search by them needs no parsing at query time."""
        parts = parts_of_stored(self.number)
        self.country, self.area_code, self.local_number = parts.country, parts.area_code, parts.local_number
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "number" in update_fields:
            kwargs["update_fields"] = {*update_fields, "country", "area_code", "local_number"}
        super().save(*args, **kwargs)

    def effective_status(self, today: date) -> DidState:
        """The status as sold on ``today`` (an ended quarantine reads as available)."""
        return effective_status(self.status, self.quarantine_until, today)


class VirtualNumber(LabeledUniqueMixin, TimestampedModel):
    """An extension that shares the rates and included minutes of a primary DID (seed 002)."""

    number = LabeledCharField("virtual number", max_length=20, unique=True, validators=[v.Digits("Virtual number", 1, 20)])
    primary_did = models.ForeignKey(Did, verbose_name="primary DID", on_delete=models.PROTECT, related_name="virtual_numbers")
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="virtual_numbers")
    activation_date = models.DateField("activation date", null=True, blank=True)
    additional_charge = money_field("Additional monthly charge", minimum=0)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} -> {self.primary_did}"

    def clean(self) -> None:
        """The rules of docs/services.md: a virtual number is an extension of the customer that
        holds its primary DID, so it shares that DID's rates and minutes within one customer."""
        super().clean()
        errors: dict[str, ValidationError] = {}
        did = self.primary_did if self.primary_did_id else None
        if did is not None and (did.status != DidStatus.ASSIGNED or not did.account_id):
            errors["primary_did"] = v.refuse(
                "Primary DID", did.number, f"must be assigned to an account (it is {did.get_status_display().lower()})",
                "not_assigned",
            )
        elif (
            did is not None and self.account_id and did.account is not None
            and self.account.customer_id != did.account.customer_id
        ):
            errors["account"] = v.refuse(
                "Account", str(self.account),
                f"must belong to the customer of the primary DID {did.number} ({did.account.customer})",
                "other_customer",
            )
        if self.number and self.account_id and "account" not in errors:
            from tarifa.customers.models import Account

            clash = Account.objects.filter(customer_id=self.account.customer_id, kind="extension",
                                           identifier=self.number)
            if clash.exists():
                errors["number"] = v.refuse("Virtual number", self.number,
                                            "already an extension of this customer", "unique")
        if errors:
            raise ValidationError(errors)
