"""Which account a CDR belongs to, and with which prices and pools it is rated (seed 002).

Loaded once per import run into dictionaries, so matching a CDR costs a few lookups. The order
in which a CDR's identities are tried, and what an identity naming several accounts means, is
:mod:`tarifa.core.identity` (shared with call authorisation and the vectorised path).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tarifa.billing.models import IncludedMinutes
from tarifa.core.cdr import CanonicalCdr, Direction
from tarifa.core.charging import POP_NOT_ALLOWED
from tarifa.core.dids import NOT_ACTIVE_YET, active_on
from tarifa.core.identity import AccountIndex, Identity
from tarifa.core.origination import LataEntry, LataRates, LataTable, OriginationPlan, OriginRate
from tarifa.core.pools import Pool
from tarifa.core.rating import RateTable, Rounding
from tarifa.customers.choices import AccountKind, BalanceMode, Status
from tarifa.customers.models import Account, IpDevice, SipDevice
from tarifa.dids.choices import DidStatus
from tarifa.dids.models import Did, DidPlan, NpaNxx, PayphoneOrigin, VirtualNumber
from tarifa.dids.models import OriginRate as OriginRateRow
from tarifa.rating.models import Tariff
from tarifa.rating.services import load_entries, tariff_table
from tarifa.routing.models import Connection, RoutingEntry


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account_id: int
    customer_id: int
    own_balance: bool
    dialing_mode: str
    tariff_id: int
    decimals: int
    pools: tuple[Pool, ...]
    pops: frozenset[str] = frozenset()  # POPs calls may come from (the POP restriction); empty: any


def pop_allowed(info: AccountInfo, switch: str) -> bool:
    """Whether a call the switch (POP) ``switch`` reported may be charged to the account: the
    POP restriction checked at authorisation holds for its CDR too (a CDR is charged only if
    its call could have been authorised)."""
    return not info.pops or switch in info.pops


@dataclass(frozen=True, slots=True)
class Match:
    """The account a CDR is charged to and how it is priced."""

    account: AccountInfo
    origination: OriginationPlan | None = None  # an inbound call's DID plan terms; None: outbound (tariff)
    pools: tuple[Pool, ...] = ()
    tariff_id: int | None = None  # outbound pricing tariff (a virtual number uses its primary DID's)
    did_number: str = ""  # the DID an inbound call is priced as (a virtual number's primary DID)
    out_payment_rate: Decimal = Decimal(0)  # per minute credited to the owner (revenue share)


@dataclass(frozen=True, slots=True)
class Unmatched:
    """Why a CDR has no account: ``no_account``, ``ambiguous_account`` or ``unknown_pbx`` (core.identity)."""

    reason: str


class Directory:
    """Identity data -> account, for one run. Built from the database in a handful of queries."""

    def __init__(self) -> None:
        self.accounts: dict[int, AccountInfo] = {}
        accounts = Account.objects.filter(status=Status.ACTIVE).select_related("customer", "service_plan")
        plan_pools: dict[int, tuple[Pool, ...]] = {}

        for pool in IncludedMinutes.objects.all():
            plan_pools.setdefault(pool.plan_id, ())
            plan_pools[pool.plan_id] += (
                Pool(f"plan:{pool.pk}", pool.minutes * 60, tuple(pool.prefixes), rollover_cap=pool.rollover_cap * 60),
            )
        pops: dict[int, frozenset[str]] = {}
        for account_id, pop in Account.pop_restriction.through.objects.values_list("account_id", "pop__name"):
            pops[account_id] = pops.get(account_id, frozenset()) | {pop}
        self.index = AccountIndex()
        pbx_address = dict(IpDevice.objects.values_list("pk", "address"))
        for a in accounts:
            customer = a.customer
            if customer.status != Status.ACTIVE:
                continue
            self.accounts[a.pk] = AccountInfo(
                account_id=a.pk,
                customer_id=customer.pk,
                own_balance=a.balance_mode == BalanceMode.OWN,
                dialing_mode=a.dialing_mode,
                tariff_id=a.tariff_id or customer.tariff_id,
                decimals=customer.billing_decimals,
                pools=plan_pools.get(a.service_plan_id, ()) if a.service_plan_id else (),
                pops=pops.get(a.pk, frozenset()),
            )
            self.index.account(
                a.pk,
                customer.pk,
                code=a.account_code,
                trunk=a.identifier if a.kind == AccountKind.TRUNK else "",
                extension=a.identifier if a.kind == AccountKind.EXTENSION else "",
                pbx=pbx_address.get(a.pbx_id, "") if a.kind == AccountKind.EXTENSION and a.pbx_id else "",
            )
            self.index.tenant(customer.account_code, customer.pk)
        for login, account_id in SipDevice.objects.filter(status=Status.ACTIVE).values_list("login", "account"):
            self.index.device("sip_user", login, account_id)
        for address, account_id in IpDevice.objects.filter(status=Status.ACTIVE).values_list("address", "account"):
            self.index.device("source_ip", address, account_id)
        self.dids: dict[str, Did] = {
            d.number: d
            for d in Did.objects.filter(status=DidStatus.ASSIGNED, account__isnull=False).select_related("plan")
        }
        self.virtual: dict[str, VirtualNumber] = {
            v.number: v for v in VirtualNumber.objects.select_related("primary_did__plan", "primary_did__account")
        }
        for number, virtual in self.virtual.items():  # an extension of its customer's PBXs (core.identity)
            self.index.extension(virtual.account_id, number)
        self._origination: dict[int, OriginationPlan] = {}
        self._tiers: dict[int, tuple[OriginRate, ...]] | None = None  # origin rates by plan, on first need
        self.payphone_prefixes: tuple[str, ...] = tuple(PayphoneOrigin.objects.values_list("prefix", flat=True))
        # the NPA-NXX table only when some plan bills by LATA (it may hold a few hundred thousand rows)
        self.lata: LataTable | None = None
        if DidPlan.objects.filter(lata_billing=True).exists():
            self.lata = LataTable(
                {
                    n: LataEntry(lata, state)
                    for n, lata, state in NpaNxx.objects.values_list("npa_nxx", "lata", "state").iterator()
                }
            )

    def _plan_terms(self, plan: DidPlan) -> OriginationPlan:
        """A DID plan's origination terms (core.origination), built once per run."""
        known = self._origination.get(plan.pk)
        if known is None:
            if self._tiers is None:  # every plan's origin rates in one query
                self._tiers = {}
                for row in OriginRateRow.objects.order_by("pk"):
                    self._tiers[row.plan_id] = (
                        *self._tiers.get(row.plan_id, ()),
                        OriginRate(row.prefix, row.rate, row.toll_free),
                    )
            lata = (
                LataRates(
                    plan.lata_intra_intrastate,
                    plan.lata_inter_intrastate,
                    plan.lata_interstate,
                    plan.lata_intra_interstate,
                )
                if plan.lata_billing
                else None
            )
            known = self._origination[plan.pk] = OriginationPlan(
                rate=plan.inbound_rate,
                interval_1=plan.inbound_interval_1,
                interval_n=plan.inbound_interval_n,
                tiers=self._tiers.get(plan.pk, ()),
                toll_free_rate=plan.toll_free_rate,
                lata=lata,
                payphone_surcharge=plan.payphone_surcharge,
            )
        return known

    def _info(self, account_id: int | None) -> AccountInfo | None:
        return self.accounts.get(account_id) if account_id is not None else None

    def did_match(self, number: str) -> Match | None:
        """The match of an inbound call to the DID ``number`` (a leading ``+`` ignored): its
        account, if active, priced by the DID's plan; None otherwise."""
        did = self.dids.get(number.lstrip("+"))
        if did is None:
            return None
        info = self._info(did.account_id)
        if info is None:
            return None
        plan = did.plan
        if plan is None:
            return Match(
                info,
                origination=OriginationPlan(rate=Decimal(0)),
                did_number=did.number,
                out_payment_rate=did.out_payment_rate,
            )
        pools = (Pool(f"did:{did.pk}", plan.included_minutes * 60),) if plan.included_minutes else ()
        return Match(
            info,
            origination=self._plan_terms(plan),
            pools=pools,
            did_number=did.number,
            out_payment_rate=did.out_payment_rate,
        )

    def match(self, cdr: CanonicalCdr) -> Match | Unmatched | None:
        """The account of a CDR: inbound calls by DID (or virtual number), outbound ones by
        :meth:`AccountIndex.resolve` (core.identity), where a virtual number is one of its
        customer's extensions and is priced as its primary DID.
        None: an inbound call to no number we hold."""
        if cdr.direction == Direction.INBOUND:
            at = cdr.connect_time or cdr.start_time
            for number in (cdr.did, cdr.callee):
                if number:
                    found = self.did_match(number)
                    if found:
                        if not active_on(self.dids[number.lstrip("+")].activation_date, at):
                            return Unmatched(NOT_ACTIVE_YET)  # core.dids.active_on
                        return found
            virtual = self.virtual.get(cdr.callee) or self.virtual.get(cdr.extension)
            if virtual is not None:
                return self._virtual_match(virtual, inbound=True)
            return None
        resolved = self.index.resolve(
            Identity(
                sip_user=cdr.sip_user,
                trunk=cdr.trunk,
                extension=cdr.extension,
                account_code=cdr.account_code,
                source_ip=cdr.source_ip,
            )
        )
        if resolved.account_id is None:
            return Unmatched(resolved.reason)
        virtual = self.virtual.get(cdr.extension) if resolved.via == "extension" else None
        if virtual is not None and virtual.account_id == resolved.account_id:
            return self._virtual_match(virtual, inbound=False)
        info = self.accounts[resolved.account_id]
        return Match(info, pools=info.pools, tariff_id=info.tariff_id)

    def _virtual_match(self, virtual: VirtualNumber, inbound: bool) -> Match | None:
        """A virtual number is charged to its own account, priced as its primary DID (seed 002)."""
        info = self._info(virtual.account_id)
        primary = virtual.primary_did
        if info is None:
            return None
        if inbound:
            did_match = self.did_match(primary.number)
            if did_match is None:
                return None
            return Match(
                info,
                origination=did_match.origination,
                pools=did_match.pools,
                did_number=did_match.did_number,
                out_payment_rate=did_match.out_payment_rate,
            )
        owner = self._info(primary.account_id) if primary.account_id else None
        pricing = owner or info
        return Match(info, pools=pricing.pools, tariff_id=pricing.tariff_id)


class Tables:
    """Rate tables by tariff and by connection (vendor side), built on first use in a run."""

    def __init__(self) -> None:
        self._tariffs: dict[int, tuple[RateTable, str]] = {}
        self._vendor: dict[str, tuple[int, RateTable, int, str] | None] = {}
        self._connections = {c.name: c for c in Connection.objects.all()}
        self._connections.update({c.host: c for c in Connection.objects.all() if c.host not in self._connections})

    def tariff(self, tariff_id: int) -> tuple[RateTable, str]:
        """(table with overrides applied, rounding)."""
        if tariff_id not in self._tariffs:
            tariff = Tariff.objects.get(pk=tariff_id)
            self._tariffs[tariff_id] = (tariff_table(tariff), tariff.rounding)
        return self._tariffs[tariff_id]

    def vendor(self, connection: str) -> tuple[int, RateTable, int, str] | None:
        """(connection id, destination set table, decimals, rounding) for the connection a call used."""
        if not connection:
            return None
        if connection not in self._vendor:
            conn = self._connections.get(connection)
            entry = (
                RoutingEntry.objects.filter(connection=conn)
                .select_related("destination_set")
                .order_by("priority")
                .first()
                if conn
                else None
            )
            if conn is None:
                self._vendor[connection] = None
            elif entry is None:
                self._vendor[connection] = (conn.pk, RateTable([]), 6, Rounding.HALF_UP)
            else:
                dset = entry.destination_set
                table = RateTable(load_entries(dset.rates.all()), dset.time_zone)
                self._vendor[connection] = (conn.pk, table, dset.billing_decimals, dset.rounding)
        return self._vendor[connection]


__all__ = ["POP_NOT_ALLOWED", "AccountInfo", "Directory", "Match", "Pool", "Tables", "Unmatched", "pop_allowed"]
