"""The configuration a decision reads, as plain frozen views (built by ``calls.cache`` from the
models once per configuration version), and the :class:`Catalogue` protocol that holds them."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, Protocol

from tarifa.core import classify as cls
from tarifa.core.identity import AccountIndex
from tarifa.core.numbering import DialingMode
from tarifa.core.rating import RateTable
from tarifa.core.translate import Rule


class RouteChoice(StrEnum):
    """An account's route choice per destination class: the value or the premium routing offer."""

    VALUE = "value"
    PREMIUM = "premium"


VALUE: Final = RouteChoice.VALUE
PREMIUM: Final = RouteChoice.PREMIUM

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class CustomerView:
    """What the decision reads of a customer (built by ``calls.cache`` from the model)."""

    id: int
    code: str
    company: str
    status: str
    active: bool
    tariff_id: int
    home: str  # ISO country code (US when none): emergency numbers and the domestic zone
    billing_decimals: int
    max_call_duration: int
    deny_loss_routes: bool = False
    codecs: tuple[str, ...] = ()  # the codec list when codec checking is on
    call_with_media: bool = True
    max_call_sessions: int | None = None
    calls_per_second: int | None = None
    daily_spending_limit: Decimal | None = None
    monthly_spending_limit: Decimal | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the decision reads of an account, with its restrictions and its customer."""

    id: int
    customer: CustomerView
    code: str
    name: str
    status: str
    active: bool
    tariff_id: int | None = None
    own_balance: bool = False
    max_channels: int | None = None
    domestic_route: str = VALUE
    international_route: str = VALUE
    tollfree_route: str = VALUE
    tollfree_carrier: str = ""
    allow_411: bool = False
    allow_international: bool = False
    allow_premium_rate: bool = False
    allowed_countries: tuple[str, ...] = ()
    international_rate_cap: Decimal | None = None
    max_call_time_domestic: int | None = None
    max_call_time_international: int | None = None
    e911_caller_id: str = ""
    dialing_mode: str = DialingMode.NANP
    caller_id_number: str = ""
    allowed_codecs: tuple[str, ...] = ()
    rtp_timeout: int | None = None
    rtp_hold_timeout: int | None = None
    dtmf_mode: str = "auto"
    networks: tuple[Network, ...] = ()  # the IP restriction; empty: any address
    pops: frozenset[str] = frozenset()  # the POP restriction; empty: any POP
    blocked_for_unpaid: bool = False  # a blocking plan's charge was not paid (tarifa.services.recurring)

    @property
    def customer_id(self) -> int:
        return self.customer.id

    def route_choice(self, dclass: str) -> str:
        """The account's value/premium choice for calls of class ``dclass`` (value for the others)."""
        return {
            cls.DOMESTIC: self.domestic_route,
            cls.INTERNATIONAL: self.international_route,
            cls.TOLL_FREE: self.tollfree_route,
        }.get(dclass, VALUE)


@dataclass(frozen=True, slots=True)
class Device:
    """A SIP or IP device: its own concurrent-call and CPS limits."""

    key: str  # "sip:<id>" or "ip:<id>": the reservation's device and the CPS scope
    account_id: int
    max_sessions: int | None
    cps: int | None


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One connection of a routing group with the destination set that prices it."""

    connection_id: int
    connection_name: str
    vendor: str
    address: str
    transport: str
    tech_prefix: str
    max_channels: int | None
    max_cps: int | None
    destination_set_id: int
    priority: int
    weight: int
    rules: tuple[Rule, ...] = ()
    emergency_format: str = ""  # "": tech prefix + the emergency number; else "{number}" in it

    @property
    def limited(self) -> bool:
        """Whether the connection has a channel or CPS limit (its state is read under its lock)."""
        return bool(self.max_channels or self.max_cps)


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    policy: str
    tariff_id: int | None
    entries: tuple[RouteEntry, ...]


@dataclass(frozen=True, slots=True)
class DialingPattern:
    """A customer's dialing route: numbers matching ``pattern`` go through group ``group_id``."""

    pattern: str
    group_id: int


@dataclass(frozen=True, slots=True)
class InboundPlan:
    rate: Decimal
    interval_1: int
    interval_n: int


@dataclass(frozen=True, slots=True)
class DidView:
    number: str
    account_id: int
    forward_to: str | None = None  # a DID forwarded to this number
    device_login: str = ""  # the SIP device the DID rings; neither: the account's devices
    plan: InboundPlan | None = None


@dataclass(frozen=True, slots=True)
class PriceList:
    """A tariff's (or destination set's) rates and its rounding."""

    table: RateTable
    rounding: str


class Catalogue(Protocol):
    """The read-mostly configuration a decision looks up (``calls.cache.Snapshot``)."""

    @property
    def accounts(self) -> Mapping[int, AccountView]: ...
    @property
    def index(self) -> AccountIndex: ...  # active accounts of active customers
    @property
    def index_all(self) -> AccountIndex: ...  # every account (a disabled one is refused as disabled)
    @property
    def by_sip(self) -> Mapping[str, Device]: ...
    @property
    def by_ip(self) -> Mapping[str, Device]: ...
    @property
    def dids(self) -> Mapping[str, DidView]: ...
    @property
    def account_dids(self) -> Mapping[int, AbstractSet[str]]: ...
    @property
    def customer_rules(self) -> Mapping[int, Sequence[Rule]]: ...
    @property
    def dialing_routes(self) -> Mapping[int, Sequence[DialingPattern]]: ...
    @property
    def offers(self) -> Mapping[tuple[str, str, str], int]: ...  # (class, choice, toll-free carrier) -> group
    @property
    def groups(self) -> Mapping[int, Group]: ...

    def tariff(self, tariff_id: int) -> PriceList: ...
    def destination_set(self, set_id: int) -> RateTable: ...
