"""The decision on a call attempt, as pure functions over plain data (DESIGN.md §3-§6, seed 001).

The service ``tarifa.calls.authorize.authorize_call`` runs it in two steps around the database:

1. :func:`plan` (``planning``) — from the configuration snapshot (:class:`Catalogue`: accounts,
   devices, DIDs, rules, routing groups, price lists; ``views``) and the request: identify the
   account, check its restrictions, translate, normalise and classify the number, find the rate
   and the routing candidates in the group's policy order. Everything that needs no per-call state.
2. :func:`judge` (``judgement``) — on the :class:`CallState` read under the customer's lock
   (balance, reservations, CPS counts, busy channels): limits, funds and max duration, usable
   routes. It returns a :data:`Verdict` (``answer``) and changes nothing, so the one-round-trip
   path can compare it with what the database already did and drop it if they differ.

Every refusal is a :class:`Refusal` (``refusal``), which carries its SIP code.

No Django, no I/O: the policy is unit-tested without a database (tests/unit/core/test_authorization.py);
the storage (``tarifa.calls.storage``) reads and writes the state, the service ties the two.
"""

from __future__ import annotations

from tarifa.core.authorization.answer import (
    Allowed,
    CallRequest,
    Decision,
    Held,
    MediaAnswer,
    RateAnswer,
    Refused,
    RouteAnswer,
    Verdict,
)
from tarifa.core.authorization.judgement import (
    CallState,
    Funds,
    answer_held,
    available_funds,
    judge,
    limit_reached,
    route_answers,
    stands_behind,
    usable_routes,
)
from tarifa.core.authorization.planning import (
    FREE,
    CpsLimit,
    Plan,
    RouteCandidate,
    SpendingWindow,
    dialled,
    identify,
    ip_allowed,
    plan,
    pricing_tariff,
    rank,
    restriction,
    routing_group,
    spending_windows,
)
from tarifa.core.authorization.refusal import Refusal
from tarifa.core.authorization.views import (
    PREMIUM,
    VALUE,
    AccountView,
    Catalogue,
    CustomerView,
    Device,
    DialingPattern,
    DidView,
    Group,
    InboundPlan,
    Network,
    PriceList,
    RouteEntry,
)

__all__ = [
    "FREE",
    "PREMIUM",
    "VALUE",
    "AccountView",
    "Allowed",
    "CallRequest",
    "CallState",
    "Catalogue",
    "CpsLimit",
    "CustomerView",
    "Decision",
    "Device",
    "DialingPattern",
    "DidView",
    "Funds",
    "Group",
    "Held",
    "InboundPlan",
    "MediaAnswer",
    "Network",
    "Plan",
    "PriceList",
    "RateAnswer",
    "Refusal",
    "Refused",
    "RouteAnswer",
    "RouteCandidate",
    "RouteEntry",
    "SpendingWindow",
    "Verdict",
    "answer_held",
    "available_funds",
    "dialled",
    "identify",
    "ip_allowed",
    "judge",
    "limit_reached",
    "plan",
    "pricing_tariff",
    "rank",
    "restriction",
    "route_answers",
    "routing_group",
    "spending_windows",
    "stands_behind",
    "usable_routes",
]
