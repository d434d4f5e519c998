"""Enumerations of the dids app; DidStatus has the values of ``tarifa.core.dids.DidState``."""

from django.db import models


class DidStatus(models.TextChoices):
    AVAILABLE = "available", "Available"
    RESERVED = "reserved", "Reserved"
    ASSIGNED = "assigned", "Assigned"
    PORTING = "porting", "Porting"
    QUARANTINED = "quarantined", "Quarantined after release"
    DISABLED = "disabled", "Disabled"


class DidDestination(models.TextChoices):
    ACCOUNT = "account", "The account's registered device"
    SIP_DEVICE = "sip_device", "A SIP device"
    FORWARD = "forward", "Forward to a number"


class ShortCallMode(models.TextChoices):
    PER_CALL = "per_call", "Per short call"
    FLAT = "flat", "Flat, once per month"
