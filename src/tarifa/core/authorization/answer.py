"""The request of a switch, the answer it gets (:class:`Decision`), and the verdicts the
judgement gives on the state (:class:`Allowed`, :class:`Refused`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tarifa.core.authorization.record import record
from tarifa.core.authorization.refusal import Refusal
from tarifa.core.authorization.views import RouteEntry
from tarifa.core.deck import format_money as money


@dataclass
class CallRequest:
    call_id: str
    callee: str
    caller: str = ""
    source_ip: str = ""
    sip_user: str = ""
    trunk: str = ""
    did: str = ""
    account_code: str = ""
    extension: str = ""  # a PBX extension (with account_code as its tenant, core.identity)
    switch: str = ""
    pop: str = ""


RouteAnswer = dict[str, str]  # one route of the answer, fields of api.calls.RouteOut
RateAnswer = dict[str, str | int]
MediaAnswer = dict[str, str | bool | int | list[str] | None]


@dataclass
class Decision:
    """The answer to the switch, filled in by :func:`plan` and then :meth:`apply` (the API's
    ``AuthorizeOut`` has exactly these fields but ``tracing``)."""

    allowed: bool
    reason: str = ""  # a Refusal, or "" when allowed
    sip_code: int = 200
    call_id: str = ""
    account: str = ""
    customer: str = ""
    number: str = ""
    destination_class: str = ""
    country: str = ""
    max_duration: int = 0
    caller_id: str = ""
    rate: RateAnswer | None = None
    media: MediaAnswer | None = None
    routes: list[RouteAnswer] = field(default_factory=list)
    reservation_id: int | None = None
    reserved: str = "0"
    trace: list[str] = field(default_factory=list)
    tracing: bool = True  # False: the steps are not written down (the switch did not ask for them)

    def note(self, step: str) -> None:
        """Write a constant step down (a formatted one: ``if d.tracing:`` first, so that nothing
        is formatted when nobody reads it — most calls of a switch)."""
        if self.tracing:
            self.trace.append(step)

    def refuse(self, refusal: Refusal, why: str) -> None:
        self.allowed, self.reason, self.sip_code = False, refusal, refusal.sip_code
        self.trace.append(f"REFUSED {refusal} (SIP {refusal.sip_code}): {why}")

    def apply(self, verdict: Verdict, reservation_id: int | None = None, how: str = "") -> None:
        """Take the judge's verdict (and the reservation that stands behind it)."""
        if self.tracing:
            self.trace.extend(verdict.trace)
        if isinstance(verdict, Refused):
            self.refuse(verdict.refusal, verdict.why)
            return
        self.allowed, self.reason, self.sip_code = True, "", 200
        self.max_duration, self.reserved, self.reservation_id = verdict.duration, money(verdict.amount), reservation_id
        if verdict.routes is not None:
            self.routes = list(verdict.routes)
        if how and self.tracing:
            self.trace.append(how)


@record
class Held:
    """A reservation the call id holds already (a switch's retry)."""

    reservation_id: int
    amount: Decimal
    max_duration: int
    connection_id: int | None


@record
class Allowed:
    duration: int
    amount: Decimal  # to reserve
    first: RouteEntry | None  # the route the call takes first (its channel and CPS are the call's)
    routes: tuple[RouteAnswer, ...] | None  # None: the plan's (inbound calls)
    trace: tuple[str, ...] = ()

    @property
    def connection_id(self) -> int | None:
        return None if self.first is None else self.first.connection_id


@record
class Refused:
    refusal: Refusal
    why: str
    trace: tuple[str, ...] = ()


Verdict = Allowed | Refused
