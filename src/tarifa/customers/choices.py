"""Every enumeration of the customers app (seed 003 and seed 001). The route choice and the
dialing mode are the core's enums (the authorisation reads them), labelled here."""

from django.db import models

from tarifa.core.authorization.views import RouteChoice
from tarifa.core.numbering import DialingMode
from tarifa.vocabulary import Labels

__all__ = [
    "DIALING_MODE_LABELS",
    "ROUTE_CHOICE_LABELS",
    "AccountKind",
    "BalanceMode",
    "BillingType",
    "CustomerKind",
    "CustomerType",
    "DeviceType",
    "DialingMode",
    "DtmfMode",
    "InboundProtocol",
    "MusicOnHold",
    "RouteChoice",
    "Status",
    "TaxFlag",
    "TollFreeCarrier",
    "TranslationKind",
]


class CustomerKind(models.TextChoices):
    OPERATOR = "operator", "Operator"
    RESELLER = "reseller", "Reseller"
    CUSTOMER = "customer", "Customer"
    PARTNER = "partner", "Termination partner"


class CustomerType(models.TextChoices):
    LIVE = "LIVE", "Live"
    DEMO = "DEMO", "Demo"


class BillingType(models.TextChoices):
    PREPAID = "prepaid", "Prepaid"
    POSTPAID = "postpaid", "Postpaid"


class TaxFlag(models.TextChoices):
    NONE = "NONE", "None"
    VAT = "VAT", "VAT"
    TAX = "TAX", "Tax"


class Status(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"


class AccountKind(models.TextChoices):
    SIP_USER = "sip_user", "SIP user"
    DEVICE = "device", "Device"
    TRUNK = "trunk", "Trunk"
    IP = "ip", "IP address"
    EXTENSION = "extension", "PBX extension"
    DID = "did", "DID"


class BalanceMode(models.TextChoices):
    SHARED = "shared", "Shares the customer's balance"
    OWN = "own", "Own balance"


ROUTE_CHOICE_LABELS = Labels(RouteChoice, {RouteChoice.VALUE: "Value", RouteChoice.PREMIUM: "Premium"})


class TollFreeCarrier(models.TextChoices):
    SERVER_DEFAULT = "default", "Server default"
    AMERICAN = "us", "American carrier"
    CANADIAN = "ca", "Canadian carrier"


DIALING_MODE_LABELS = Labels(DialingMode, {DialingMode.NANP: "North America", DialingMode.E164: "E.164"})


class DtmfMode(models.TextChoices):
    AUTO = "auto", "Auto (RFC 2833, falls back to in-band)"
    RFC2833 = "rfc2833", "RFC 2833"
    INBAND = "inband", "In-band"
    INFO = "info", "SIP INFO"


class InboundProtocol(models.TextChoices):
    SIP = "SIP", "SIP"
    IAX2 = "IAX2", "IAX2"


class DeviceType(models.TextChoices):
    ATA = "ata", "ATA"
    IP_PHONE = "ip_phone", "IP phone"
    SOFTPHONE = "softphone", "Softphone"
    PBX = "pbx", "PBX / soft switch"
    OTHER = "other", "Other"


class MusicOnHold(models.TextChoices):
    BLEEP = "bleep", "No music, intermittent bleep"
    TROPICS = "tropics", "Away in the Tropics"
    COFFEE_SUNRISE = "coffee_sunrise", "Coffee and Sunrise"
    COFFEE_SHOP = "coffee_shop", "Coffee Shop Acoustic"
    EASY = "easy", "Easy Listening"
    GUITAR = "guitar", "Guitar Alchemy"
    HAPPY = "happy", "Happy Endings"
    LIGHT = "light", "Light and Casual"
    ORCHESTRAL = "orchestral", "Orchestral Moods"
    PIANO = "piano", "Piano Mix"
    ROCK = "rock", "Rock Me Easy"
    SPA = "spa", "Spa Sounds"


class TranslationKind(models.TextChoices):
    SOURCE = "source", "Source number"
    DESTINATION = "destination", "Destination number"
    DID_SOURCE = "did_source", "DID calls: source number"
    DID_DESTINATION = "did_destination", "DID calls: destination number"
