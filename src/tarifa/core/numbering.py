"""Dialled-number normalisation to E.164 digits (no ``+``), per the account's dialing mode.

Rating, routing and restrictions all key on the same digit string, so every door (API,
RADIUS, CDR files) must normalise with this one function. It is deliberately pure string
work, cheap enough to run on every call attempt and every CDR; country and number-type
classification (``phonenumbers``) is a separate, slower step done where it is needed.

Modes (DESIGN section 4):

``nanp`` (North America)
    10 digits -> ``1`` + digits; 11 digits starting with ``1`` as they are; ``011`` or ``00``
    (or ``+``) followed by an international number. N11 service codes (``211``..``911``,
    e.g. directory assistance ``411``) become ``1`` + code, so a tariff can price them under
    prefix ``1411`` without colliding with a country code (``41`` is Switzerland).
``e164``
    Country code first; an optional ``+``, ``00`` or ``011`` in front is removed.

Spaces, dashes, dots and parentheses are ignored anywhere. The result has 1-15 digits and
never starts with ``0`` (no country code does).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "E164",
    "MAX_DIGITS",
    "MAX_RAW_LENGTH",
    "NANP",
    "SEPARATORS",
    "DialingMode",
    "InvalidNumber",
    "is_e164_digits",
    "normalize",
]


class DialingMode(StrEnum):
    """How an account dials (the account's ``dialing_mode``; the module docstring gives the rules)."""

    NANP = "nanp"
    E164 = "e164"


NANP: Final = DialingMode.NANP
E164: Final = DialingMode.E164
MAX_DIGITS: Final = 15
MAX_RAW_LENGTH: Final = 64  # refuse absurd input before doing any work on it
#: what a dialled number may contain besides digits and a leading "+" (ignored)
SEPARATORS: Final = " \t-.()"

_SEPARATORS = str.maketrans("", "", SEPARATORS)


class InvalidNumber(ValueError):
    """A dialled number that cannot be normalised; ``reason`` says which rule it broke."""

    def __init__(self, number: str, reason: str) -> None:
        self.number = number
        self.reason = reason
        super().__init__(f"invalid number {number!r}: {reason}")


def is_e164_digits(digits: str) -> bool:
    """True for an already-normalised number: 1-15 ASCII digits, first one not ``0``."""
    return 0 < len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit() and digits[0] != "0"


def _check_international(raw: str, digits: str) -> str:
    if not digits:
        raise InvalidNumber(raw, "no digits after the international prefix")
    if digits[0] == "0":
        raise InvalidNumber(raw, "a country code cannot start with 0")
    if len(digits) > MAX_DIGITS:
        raise InvalidNumber(raw, f"more than {MAX_DIGITS} digits")
    return digits


def normalize(number: str, mode: str) -> str:
    """Return the E.164 digits of ``number`` dialled in ``mode`` (``"nanp"`` or ``"e164"``).

    Raises :class:`InvalidNumber` (a ``ValueError``) for an empty number, a character that
    is not a digit, more than 15 digits, or a length the dialing mode does not allow.
    """
    if mode not in (NANP, E164):
        raise ValueError(f"unknown dialing mode {mode!r}; expected 'nanp' or 'e164'")
    if not isinstance(number, str):
        raise TypeError(f"number must be a str, got {type(number).__name__}")
    if len(number) > MAX_RAW_LENGTH:
        raise InvalidNumber(number[:MAX_RAW_LENGTH] + "...", f"more than {MAX_DIGITS} digits")
    s = number.translate(_SEPARATORS)
    if not s:
        raise InvalidNumber(number, "empty")
    plus = s[0] == "+"
    if plus:
        s = s[1:]
    if not (s.isascii() and s.isdigit()):
        bad = next((c for c in s if not ("0" <= c <= "9")), "")
        if not s:
            raise InvalidNumber(number, "no digits after '+'")
        raise InvalidNumber(number, f"{bad!r} is not a digit")
    if plus:
        return _check_international(number, s)
    if s.startswith("011"):
        return _check_international(number, s[3:])
    if s.startswith("00"):
        return _check_international(number, s[2:])
    if mode == E164:
        return _check_international(number, s)
    # North American dialing
    n = len(s)
    if n == 10:
        return "1" + s
    if n == 11:
        if s[0] == "1":
            return s
        raise InvalidNumber(number, "an 11-digit North American number must start with 1")
    if n == 3 and s[0] != "0" and s[0] != "1" and s[1:] == "11":
        return "1" + s
    if n > MAX_DIGITS:
        raise InvalidNumber(number, f"more than {MAX_DIGITS} digits")
    raise InvalidNumber(
        number,
        f"{n} digits: North American dialing takes 10 or 11 digits, an N11 code, "
        "or 011/00 before an international number",
    )
