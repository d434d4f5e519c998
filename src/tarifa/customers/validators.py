"""Field rules from the seeds, shared by the admin, the API and the importers.

Every validator is built with the human label of the field it guards, so that a refusal names
the field, the value and the rule, whichever door the value came in by.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.deconstruct import deconstructible
from django_countries import countries

CODECS = ("PCMU", "PCMA", "G722", "G729", "G723", "GSM", "iLBC", "OPUS", "SPEEX", "H264", "VP8")

_ALNUM = re.compile(r"^[A-Za-z0-9]+$")
_DIGITS = re.compile(r"^[0-9]+$")
_SPECIAL = re.compile(r"[^A-Za-z0-9]")


def refuse(label: str, value: Any, rule: str, code: str = "invalid") -> ValidationError:
    """The one shape of every refusal: "<field> <value> is refused: <rule>"."""
    shown = repr(value) if isinstance(value, str) else ("(empty)" if value is None else str(value))
    return ValidationError(
        "%(label)s %(value)s is refused: %(rule)s",
        code=code,
        params={"label": label, "value": shown, "rule": rule},
    )


def validate_time_zone(value: str) -> None:
    """An IANA time zone name (tariffs, destination sets, customers)."""
    import zoneinfo

    if value not in zoneinfo.available_timezones():
        raise refuse("Time zone", value, "must be an IANA time zone such as Europe/London", "time_zone")


@deconstructible
class Labeled:
    """Base: a validator that knows the label of its field."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__


@deconstructible
class MaxLength(Labeled):
    def __init__(self, label: str, limit: int) -> None:
        super().__init__(label)
        self.limit = limit

    def __call__(self, value: str) -> None:
        if value is not None and len(value) > self.limit:
            raise refuse(self.label, value, f"at most {self.limit} characters (it has {len(value)})", "max_length")


@deconstructible
class Alphanumeric(Labeled):
    def __call__(self, value: str) -> None:
        if value and not _ALNUM.match(value):
            raise refuse(self.label, value, "only letters A-Z, a-z and digits 0-9 are allowed", "alphanumeric")


@deconstructible
class Digits(Labeled):
    def __init__(self, label: str, min_length: int = 1, max_length: int = 15) -> None:
        super().__init__(label)
        self.min_length = min_length
        self.max_length = max_length

    def __call__(self, value: str) -> None:
        if not _DIGITS.match(value or "") or not self.min_length <= len(value) <= self.max_length:
            raise refuse(
                self.label, value, f"must be {self.min_length} to {self.max_length} digits 0-9", "digits"
            )


@deconstructible
class Between(Labeled):
    """Inclusive numeric range; ``None`` passes (use ``blank=False`` to require a value)."""

    def __init__(self, label: str, low: int | str | None, high: int | str | None, unit: str = "") -> None:
        super().__init__(label)
        self.low = low
        self.high = high
        self.unit = unit

    def _rule(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.high is None:
            return f"must be at least {self.low}{unit}"
        if self.low is None:
            return f"must be at most {self.high}{unit}"
        return f"must be between {self.low} and {self.high}{unit}"

    def __call__(self, value: Any) -> None:
        if value is None:
            return
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise refuse(self.label, value, "must be a number", "number") from None
        if self.low is not None and number < Decimal(str(self.low)):
            raise refuse(self.label, value, self._rule(), "range")
        if self.high is not None and number > Decimal(str(self.high)):
            raise refuse(self.label, value, self._rule(), "range")


@deconstructible
class Email(Labeled):
    def __init__(self, label: str, limit: int = 254) -> None:
        super().__init__(label)
        self.limit = limit

    def __call__(self, value: str) -> None:
        if not value:
            return
        if len(value) > self.limit:
            raise refuse(self.label, value, f"at most {self.limit} characters (it has {len(value)})", "max_length")
        try:
            validate_email(value)
        except ValidationError:
            raise refuse(self.label, value, "must be a valid e-mail address (name@domain)", "email") from None


@deconstructible
class EmailList(Labeled):
    """Comma-separated e-mail addresses (seed 001: notification e-mails)."""

    def __call__(self, value: str) -> None:
        for item in (part.strip() for part in (value or "").split(",")):
            if not item:
                continue
            try:
                validate_email(item)
            except ValidationError:
                raise refuse(self.label, item, "each address must be a valid e-mail address", "email") from None


@deconstructible
class IpAddress(Labeled):
    def __call__(self, value: str) -> None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise refuse(self.label, value, "must be an IPv4 or IPv6 address", "ip") from None


@deconstructible
class IpNetworkList(Labeled):
    """A list of addresses or CIDR ranges (IP restriction)."""

    def __call__(self, value: Any) -> None:
        if not isinstance(value, list):
            raise refuse(self.label, value, "must be a list of IP addresses or CIDR ranges", "list")
        for item in value:
            try:
                ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                raise refuse(self.label, item, "must be an IP address or CIDR range such as 192.0.2.0/24", "ip") from None


@deconstructible
class CountryList(Labeled):
    def __call__(self, value: Any) -> None:
        if not isinstance(value, list):
            raise refuse(self.label, value, "must be a list of ISO 3166 country codes", "list")
        for item in value:
            if item not in countries:
                raise refuse(self.label, item, "must be an ISO 3166 alpha-2 country code such as GB", "country")


@deconstructible
class CodecList(Labeled):
    def __call__(self, value: Any) -> None:
        if not isinstance(value, list) or not value:
            raise refuse(self.label, value, "must be a non-empty list of codecs", "list")
        for item in value:
            if item not in CODECS:
                raise refuse(self.label, item, f"must be one of {', '.join(CODECS)}", "codec")


@deconstructible
class Regex(Labeled):
    def __call__(self, value: str) -> None:
        try:
            re.compile(value)
        except re.error as exc:
            raise refuse(self.label, value, f"must be a valid regular expression ({exc})", "regex") from None


@deconstructible
class EmergencyFormat(Labeled):
    """How a connection wants emergency numbers: ``{number}`` once, with dial characters
    (digits, ``*``, ``#``, ``+``) around it."""

    def __call__(self, value: str) -> None:
        if value and (value.count("{number}") != 1 or not re.fullmatch(r"[0-9*#+]*", value.replace("{number}", ""))):
            raise refuse(self.label, value, "must contain {number} once and otherwise only digits, * # and +",
                         "emergency_format")


@deconstructible
class PostalCode(Labeled):
    def __call__(self, value: str) -> None:
        if value and not re.match(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$", value):
            raise refuse(self.label, value, "must be 2-10 letters, digits, spaces or dashes", "pin")


def validate_phone(label: str, value: str, country: str | None) -> None:
    """A phone number valid by libphonenumber, national (for ``country``) or in +E.164 form."""
    if not value:
        return
    try:
        parsed = phonenumbers.parse(value, (country or None) if not value.startswith("+") else None)
    except phonenumbers.NumberParseException:
        raise refuse(label, value, "must be a valid phone number (national digits or +country code)", "phone") from None
    if not phonenumbers.is_valid_number(parsed):
        where = f" for country {country}" if country and not value.startswith("+") else ""
        raise refuse(label, value, f"is not a valid phone number{where}", "phone")


def validate_web_password(value: str, label: str = "Web access password") -> None:
    """Seed 003: 8-30 characters with at least one capital letter, one digit, one special character."""
    if not 8 <= len(value) <= 30:
        raise refuse(label, "*" * len(value), "must be 8 to 30 characters long", "password_length")
    missing = []
    if not re.search(r"[A-Z]", value):
        missing.append("one capital letter")
    if not re.search(r"[0-9]", value):
        missing.append("one digit")
    if not _SPECIAL.search(value):
        missing.append("one special character")
    if missing:
        raise refuse(label, "*" * len(value), "must contain " + ", ".join(missing), "password_strength")


class WebPasswordValidator:
    """Django password-validator adapter so every password form applies the seed 003 rule."""

    def validate(self, password: str, user: Any = None) -> None:
        validate_web_password(password, "Password")

    def get_help_text(self) -> str:
        return "8 to 30 characters with at least one capital letter, one digit and one special character."
