"""The "why did my call fail?" page: the authorisation's decision told to the customer.

The decision's trace is the back office's (``calls.admin_simulate``), which names vendors,
connections, routing groups and tariff ids: the operator's business, not the customer's. The
customer sees the steps about its own account, number, restrictions, rate and funds; steps about
carriers are left out, and a refusal for want of a carrier is said without naming one. Each
refusal comes with what the customer can do, pointing to the setting that decides it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tarifa.core.authorization import Refusal

__all__ = ["ADVICE", "Explanation", "explain"]

#: refusal -> (what happened, what to do, the settings group that decides it or "")
ADVICE: dict[str, tuple[str, str, str]] = {
    Refusal.UNKNOWN_ACCOUNT: (
        "The call did not name one of your accounts.",
        "Check the device's SIP user and password.",
        "",
    ),
    Refusal.AMBIGUOUS_ACCOUNT: ("The call matched more than one account.", "Contact support.", ""),
    Refusal.UNKNOWN_PBX: ("The extension called from a PBX it is not registered with.", "Contact support.", ""),
    Refusal.ACCOUNT_DISABLED: ("The account or the customer is inactive.", "Contact support.", ""),
    Refusal.IP_NOT_ALLOWED: (
        "The call came from an address outside the account's IP restriction.",
        "Add the address to the IP restriction, or empty it.",
        "security",
    ),
    Refusal.POP_NOT_ALLOWED: (
        "The call came through a POP outside the account's POP restriction.",
        "Allow that POP, or none to allow every POP.",
        "security",
    ),
    Refusal.INVALID_NUMBER: (
        "The number dialled is not a valid number for the account's dialing mode.",
        "Check the number, or the dialing mode (North America or E.164).",
        "general",
    ),
    Refusal.INSUFFICIENT_FUNDS: ("The balance could not pay for the first minute of the call.", "Add money.", ""),
    Refusal.UNPAID_CHARGES: ("The account is blocked for unpaid charges.", "Pay the balance due.", ""),
    Refusal.DESTINATION_FORBIDDEN: (
        "Calls to this destination are not allowed: your tariff forbids it, or 411 dialing is off.",
        "For 411, turn on “Allow 411 dialing”; otherwise contact support.",
        "restrictions",
    ),
    Refusal.INTERNATIONAL_DISABLED: (
        "International calls are off for this account.",
        "Turn on “Allow international calls”.",
        "restrictions",
    ),
    Refusal.COUNTRY_NOT_ALLOWED: (
        "The country called is not among the account's allowed countries.",
        "Add the country to “Allowed countries”.",
        "restrictions",
    ),
    Refusal.RATE_ABOVE_CAP: (
        "The per-minute rate of this destination is above the account's international rate cap.",
        "Raise or clear the “International per-minute rate cap”.",
        "restrictions",
    ),
    Refusal.NO_RATE: ("Your tariff has no rate for this number.", "Contact support.", ""),
    Refusal.CONCURRENT_LIMIT: (
        "Too many calls were in progress at once.",
        "Wait for a call to end, or ask for more channels.",
        "",
    ),
    Refusal.CPS_LIMIT: ("Too many calls were started in the same second.", "Start calls more slowly.", ""),
    Refusal.NO_ROUTE: ("No carrier could take this call.", "Try again later, or contact support.", ""),
    Refusal.LOSS_ROUTE: ("No carrier could take this call at your rate.", "Contact support.", ""),
    Refusal.PREMIUM_RATE_DISABLED: (
        "Premium-rate calls are off for this account.",
        "Turn on “Allow premium-rate calls” (where toll fraud goes: only if you need them).",
        "restrictions",
    ),
    Refusal.DIRECTORY_411_ONLY: (
        "Directory assistance is reached by dialling 411 only, and 411 is off for this account.",
        "Turn on “Allow 411 dialing”.",
        "restrictions",
    ),
}

#: Steps about carriers (vendors, connections, routing groups): not shown to customers.
_HIDDEN = re.compile(r"^(connection |dropped \d+ loss route|route |routes? |vendor |group )", re.IGNORECASE)
_TARIFF_ID = re.compile(r" \(tariff \d+\)$")
_BY_VALUE = {refusal.value: refusal for refusal in Refusal}
_CARRIER_REFUSALS = {Refusal.NO_ROUTE.value, Refusal.LOSS_ROUTE.value}


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    reason: str  # a Refusal value, "" when allowed
    sip_code: int
    what: str
    todo: str
    group: str  # the settings group to open, or ""
    steps: list[str]


def customer_steps(trace: list[str], reason: str) -> list[str]:
    """The trace without the operator's business."""
    steps = []
    for step in trace:
        if _HIDDEN.match(step):
            continue
        if step.startswith("REFUSED ") and reason in _CARRIER_REFUSALS:
            refusal = _BY_VALUE[reason]
            steps.append(f"REFUSED {refusal} (SIP {refusal.sip_code}): {ADVICE[refusal][0]}")
            continue
        if step.startswith("no connection of group") or step.startswith("every route costs"):
            continue
        steps.append(_TARIFF_ID.sub("", step))
    return steps


def explain(allowed: bool, reason: str, sip_code: int, trace: list[str]) -> Explanation:
    if allowed:
        return Explanation(True, "", sip_code, "The call would be allowed now.", "", "", customer_steps(trace, ""))
    what, todo, group = ADVICE.get(reason, ("The call was refused.", "Contact support.", ""))
    return Explanation(False, reason, sip_code, what, todo, group, customer_steps(trace, reason))
