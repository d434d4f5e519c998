"""Field rules from the seeds, shared by the admin, the API and the importers.

Every validator is built with the human label of the field it guards, so that a refusal names
the field, the value and the rule, whichever door the value came in by.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import date
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


_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@deconstructible
class Identifier(Labeled):
    """A name other systems use as a key (a POP name in switch configuration, tokens, exports):
    letters, digits, ``-``, ``_``, ``.``, starting with a letter or digit — so no blanks, control
    characters or spreadsheet-formula lead (``=``, ``+``, ``-``, ``@``)."""

    def __call__(self, value: str) -> None:
        if value and not _IDENTIFIER.match(value):
            raise refuse(
                self.label,
                value,
                "only letters, digits, '-', '_' and '.' are allowed, starting with a letter or digit",
                "identifier",
            )


@deconstructible
class Digits(Labeled):
    def __init__(self, label: str, min_length: int = 1, max_length: int = 15) -> None:
        super().__init__(label)
        self.min_length = min_length
        self.max_length = max_length

    def __call__(self, value: str) -> None:
        if not _DIGITS.match(value or "") or not self.min_length <= len(value) <= self.max_length:
            raise refuse(self.label, value, f"must be {self.min_length} to {self.max_length} digits 0-9", "digits")


#: The days a date typed by someone may name (as DIDs do): far enough for any report, and far from
#: ``date.min``/``date.max``, where adding a day or a time zone raises OverflowError (attack finding 6).
DAY_MIN = date(2000, 1, 1)
DAY_MAX = date(2999, 12, 31)
DAY_RULE = f"must be between {DAY_MIN.isoformat()} and {DAY_MAX.isoformat()}"


@deconstructible
class DayBetween(Labeled):
    """A day within ``DAY_MIN`` .. ``DAY_MAX``; ``None`` passes."""

    def __call__(self, value: date | None) -> None:
        if value is not None and not DAY_MIN <= value <= DAY_MAX:
            raise refuse(self.label, value.isoformat(), DAY_RULE, "range")


@deconstructible
class SingleLine(Labeled):
    """One line of text: no control characters (CR, LF, ESC, tab, ... -- Unicode category Cc).
    They would break lines or plant terminal escapes where the text is printed (attack finding 5)."""

    def __call__(self, value: str) -> None:
        if any(unicodedata.category(ch) == "Cc" for ch in value or ""):
            raise refuse(self.label, value, "may not contain line breaks or control characters", "control")


@deconstructible
class Between(Labeled):
    """Inclusive numeric range; ``None`` passes (use ``blank=False`` to require a value)."""

    def __init__(
        self, label: str, low: int | str | Decimal | None, high: int | str | Decimal | None, unit: str = ""
    ) -> None:
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
            self.check_item(item)

    def check_item(self, item: Any) -> None:
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
            raise refuse(
                self.label, value, "must contain {number} once and otherwise only digits, * # and +", "emergency_format"
            )


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


WEB_PASSWORD_MAX = 30
"""Seed 003's literal limit for the customer's web access password ("max length 30")."""

STAFF_PASSWORD_MAX = 1024
"""Staff passphrases may be long (issue 12); the bound only keeps hashing a request cheap."""


def password_rule_problems(value: str) -> list[str]:
    """What the seed 003 password rule still misses in ``value`` (empty: nothing).

    Unicode-aware: ``Á`` is a capital letter, ``é`` is a letter and not a special character.
    """
    missing = []
    if not any(ch.isupper() for ch in value):
        missing.append("one capital letter")
    if not any(ch.isdigit() for ch in value):
        missing.append("one digit")
    if not any(not ch.isalnum() for ch in value):
        missing.append("one special character")
    return missing


def validate_web_password(
    value: str, label: str = "Web access password", max_length: int | None = WEB_PASSWORD_MAX
) -> None:
    """Seed 003: at least 8 characters (at most 30 for the web access password) with at least one
    capital letter, one digit and one special character. The value is shown masked."""
    masked = "*" * min(len(value), 40)
    if len(value) < 8 or (max_length is not None and len(value) > max_length):
        rule = f"must be 8 to {max_length} characters long" if max_length else "must be at least 8 characters long"
        raise refuse(label, masked, rule, "password_length")
    missing = password_rule_problems(value)
    if missing:
        raise refuse(label, masked, "must contain " + ", ".join(missing), "password_strength")


_SIP_CHARS = re.compile(r"^[\x21-\x7e]+$")


def validate_sip_password(value: str, label: str = "Main SIP/IAX password") -> None:
    """The main account's SIP/IAX password: seed 001 makes it the portal password by default, so
    it follows the same seed 003 rule (8+ characters, one capital, one digit, one special), in
    printable ASCII without spaces because SIP devices and digest authentication need that."""
    masked = "*" * min(len(value), 40)
    if not _SIP_CHARS.match(value or ""):
        raise refuse(label, masked, "must be printable ASCII characters without spaces", "sip_password")
    validate_web_password(value, label, max_length=64)


SIP_SECRET_MIN = 12


def validate_sip_secret(value: str, label: str = "SIP device secret") -> None:
    """A SIP device secret (seed 003 gives no rule beyond "alphanumeric"). SIP registrars are
    scanned and brute-forced around the clock, so: 12 to 64 printable ASCII characters without
    spaces, with at least one capital letter, one small letter and one digit."""
    masked = "*" * min(len(value), 40)
    if not _SIP_CHARS.match(value or ""):
        raise refuse(label, masked, "must be printable ASCII characters without spaces", "sip_secret")
    if not SIP_SECRET_MIN <= len(value) <= 64:
        raise refuse(label, masked, f"must be {SIP_SECRET_MIN} to 64 characters long", "sip_secret_length")
    missing = [
        rule
        for rule, ok in (
            ("one capital letter", any(ch.isupper() for ch in value)),
            ("one small letter", any(ch.islower() for ch in value)),
            ("one digit", any(ch.isdigit() for ch in value)),
        )
        if not ok
    ]
    if missing:
        raise refuse(label, masked, "must contain " + ", ".join(missing), "sip_secret_strength")


@deconstructible
class SipSecret(Labeled):
    def __call__(self, value: str) -> None:
        if value:
            validate_sip_secret(value, self.label)


@deconstructible
class SipPassword(Labeled):
    def __call__(self, value: str) -> None:
        if value:
            validate_sip_password(value, self.label)


class WebPasswordValidator:
    """Django password validator (AUTH_PASSWORD_VALIDATORS): every password form applies the seed
    003 rule. A customer's portal login keeps the seed's 30-character limit; staff and
    superusers may use long passphrases."""

    def validate(self, password: str, user: Any = None) -> None:
        is_customer = user is not None and getattr(user, "pk", None) is not None and _has_customer(user)
        validate_web_password(password, "Password", WEB_PASSWORD_MAX if is_customer else STAFF_PASSWORD_MAX)

    def get_help_text(self) -> str:
        return "At least 8 characters with at least one capital letter, one digit and one special character."


def _has_customer(user: Any) -> bool:
    from django.core.exceptions import ObjectDoesNotExist

    try:
        return user.customer is not None
    except ObjectDoesNotExist:
        return False


# --- currencies, hosts, hardware addresses, dial strings -------------------------------------

_NOT_CURRENCIES = {"XXX", "XTS"}  # ISO 4217's "no currency" and "testing" codes: nothing can be billed in them


def iso_currencies() -> frozenset[str]:
    """Active ISO 4217 alphabetic codes, from pycountry's copy of the ISO data (Debian iso-codes)."""
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_CURRENCIES


@deconstructible
class Currency(Labeled):
    """An active ISO 4217 currency code, in capitals (USD, EUR, GBP)."""

    def __call__(self, value: str) -> None:
        if value is None or value == "":
            return
        if value in iso_currencies():
            return
        if value.upper() in iso_currencies():
            raise refuse(self.label, value, f"must be written in capitals ({value.upper()})", "currency_case")
        raise refuse(self.label, value, "must be an ISO 4217 currency code such as USD, EUR or GBP", "currency")


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@deconstructible
class Host(Labeled):
    """A host name (RFC 1123 labels: letters, digits, inner hyphens; 253 characters at most) or
    an IPv4/IPv6 address."""

    def __call__(self, value: str) -> None:
        if not value:
            return
        try:
            ipaddress.ip_address(value)
            return
        except ValueError:
            pass
        name = value[:-1] if value.endswith(".") else value
        labels = name.split(".")
        if (
            len(name) > 253
            or not all(_HOST_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()  # 1.2.3.999 is a bad address, not a host name
        ):
            raise refuse(
                self.label,
                value,
                "must be a host name (letters, digits, hyphens and dots) or an IPv4/IPv6 address",
                "host",
            )


_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")


@deconstructible
class MacAddress(Labeled):
    """A 48-bit MAC address: six hexadecimal pairs separated by ``:`` or ``-`` (or none)."""

    def __call__(self, value: str) -> None:
        if value and not _MAC.match(value):
            raise refuse(self.label, value, "must be six hexadecimal pairs such as 00:1A:2B:3C:4D:5E", "mac")


_DIAL_STRING = re.compile(r"^[0-9*#]+$")


@deconstructible
class DialString(Labeled):
    """What can be dialled on a keypad: digits, ``*`` and ``#`` (tech and dial prefixes)."""

    def __init__(self, label: str, max_length: int = 15) -> None:
        super().__init__(label)
        self.max_length = max_length

    def __call__(self, value: str) -> None:
        if value and (not _DIAL_STRING.match(value) or len(value) > self.max_length):
            raise refuse(
                self.label,
                value,
                f"must be 1 to {self.max_length} keypad characters: digits 0-9, * and #",
                "dial_string",
            )
