"""Process-local snapshots of what call authorisation reads on every call (accounts, devices,
rules, routing groups, rate tables), rebuilt when the shared ConfigVersion moves.

Every change to those models bumps the version in the database (signals below, and explicit
``rating.signals.rates_written`` after raw bulk writes such as deck imports), so every app process on every
machine notices within ``TARIFA_CACHE_CHECK_SECONDS`` (default 1 s; 0 = check on every call).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from tarifa import config
from tarifa.core import authorization as authz
from tarifa.core.identity import AccountIndex
from tarifa.core.rating import RateTable
from tarifa.core.translate import Rule
from tarifa.customers.choices import AccountKind, BalanceMode, Status
from tarifa.customers.models import Account, Customer, DialingRoute, IpDevice, SipDevice, TranslationRule
from tarifa.dids.choices import DidDestination, DidStatus
from tarifa.dids.models import Did, DidPlan, VirtualNumber
from tarifa.rating.models import Rate, Tariff
from tarifa.rating.services import load_entries, rates_signature, tariff_signature, tariff_table
from tarifa.rating.signals import rates_written
from tarifa.routing.models import (
    Connection,
    DestinationRate,
    DestinationSet,
    Pop,
    RouteOffer,
    RoutingEntry,
    RoutingGroup,
    Vendor,
)

_lock = threading.Lock()
_state: dict[str, Any] = {"version": None, "checked": 0.0, "snapshot": None}
CHECK_SECONDS = config.cache_check_seconds()


def current_version() -> int:
    from tarifa.calls.models import ConfigVersion

    row = ConfigVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return row or 0


def bump() -> None:
    """Mark the configuration changed (after the current transaction commits)."""

    def _do() -> None:
        from tarifa.calls.models import ConfigVersion

        with connection.cursor() as cursor:
            table = connection.ops.quote_name(ConfigVersion._meta.db_table)
            cursor.execute(f"UPDATE {table} SET version = version + 1 WHERE id = 1")
            if cursor.rowcount == 0:
                ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})
        _state["checked"] = 0.0  # this process re-reads at once

    transaction.on_commit(_do)


# The snapshot's views are the decision's plain data (core.authorization); re-exported here.
Device = authz.Device
RouteEntry = authz.RouteEntry
Group = authz.Group


@dataclass
class Snapshot:
    """The configuration one decision reads (``core.authorization.Catalogue``), as plain views:
    no model instance is kept, so the decision cannot reach the database by accident."""

    version: int
    accounts: dict[int, authz.AccountView] = field(default_factory=dict)
    by_sip: dict[str, Device] = field(default_factory=dict)
    by_ip: dict[str, Device] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    # identities -> account in the one matching order (core.identity): active accounts of active
    # customers, and every account (a disabled one is then refused as disabled, not unknown)
    index: AccountIndex = field(default_factory=AccountIndex)
    index_all: AccountIndex = field(default_factory=AccountIndex)
    dids: dict[str, authz.DidView] = field(default_factory=dict)
    account_dids: dict[int, set[str]] = field(default_factory=dict)
    customer_rules: dict[int, list[Rule]] = field(default_factory=dict)
    dialing_routes: dict[int, list[authz.DialingPattern]] = field(default_factory=dict)
    offers: dict[tuple[str, str, str], int] = field(default_factory=dict)
    groups: dict[int, Group] = field(default_factory=dict)
    _tariffs: dict[int, authz.PriceList] = field(default_factory=dict)
    _sets: dict[int, RateTable] = field(default_factory=dict)

    def tariff(self, tariff_id: int) -> authz.PriceList:
        if tariff_id not in self._tariffs:
            self._tariffs[tariff_id] = _table(("tariff", tariff_id))
        return self._tariffs[tariff_id]

    def destination_set(self, set_id: int) -> RateTable:
        if set_id not in self._sets:
            self._sets[set_id] = _table(("set", set_id)).table
        return self._sets[set_id]


# Rate tables outlive snapshots: rebuilt only when their own rates changed (a cheap aggregate
# tells), so editing an account does not make every worker reload 60,000 rates. One lock per
# table: the threads of a worker wait for one load instead of all loading the same table.
_tables: dict[tuple[str, int], tuple[tuple[object, ...], authz.PriceList]] = {}
_table_locks: dict[tuple[str, int], threading.Lock] = {}


def _table(key: tuple[str, int]) -> authz.PriceList:
    with _lock:
        lock = _table_locks.setdefault(key, threading.Lock())
    with lock:
        kind, pk = key
        if kind == "tariff":
            tariff = Tariff.objects.get(pk=pk)
            signature = tariff_signature(tariff)
            held = _tables.get(key)
            if held is None or held[0] != signature:
                held = (signature, authz.PriceList(tariff_table(tariff), tariff.rounding))
                _tables[key] = held
        else:
            dset = DestinationSet.objects.get(pk=pk)
            signature = (dset.time_zone, dset.rounding, rates_signature(dset.rates.all()))
            held = _tables.get(key)
            if held is None or held[0] != signature:
                held = (
                    signature,
                    authz.PriceList(RateTable(load_entries(dset.rates.all()), dset.time_zone), dset.rounding),
                )
                _tables[key] = held
        return held[1]


def warm_up() -> None:
    """Load the snapshot and every rate table now (a worker's start), not on the first call."""
    snap = snapshot()
    for tariff_id in Tariff.objects.values_list("pk", flat=True):
        snap.tariff(tariff_id)
    for set_id in DestinationSet.objects.values_list("pk", flat=True):
        snap.destination_set(set_id)


def _customer_view(customer: Customer) -> authz.CustomerView:
    return authz.CustomerView(
        id=customer.pk,
        code=customer.account_code,
        company=customer.company,
        status=customer.status,
        active=customer.status == Status.ACTIVE,
        tariff_id=customer.tariff_id,
        home=str(customer.country or "US"),
        billing_decimals=customer.billing_decimals,
        max_call_duration=customer.max_call_duration,
        deny_loss_routes=customer.deny_loss_routes,
        codecs=tuple(customer.codecs or ()) if customer.codec_checking else (),
        call_with_media=customer.call_with_media,
        max_call_sessions=customer.max_call_sessions,
        calls_per_second=customer.calls_per_second,
        daily_spending_limit=customer.daily_spending_limit,
        monthly_spending_limit=customer.monthly_spending_limit,
        time_zone=customer.time_zone,
    )


def _account_view(account: Account, customer: authz.CustomerView) -> authz.AccountView:
    return authz.AccountView(
        id=account.pk,
        customer=customer,
        code=account.account_code,
        name=account.name,
        status=account.status,
        active=account.status == Status.ACTIVE,
        tariff_id=account.tariff_id,
        own_balance=account.balance_mode == BalanceMode.OWN,
        max_channels=account.max_channels,
        domestic_route=account.domestic_route,
        international_route=account.international_route,
        tollfree_route=account.tollfree_route,
        tollfree_carrier=account.tollfree_carrier,
        allow_411=account.allow_411,
        allow_international=account.allow_international,
        allow_premium_rate=account.allow_premium_rate,
        allowed_countries=tuple(account.allowed_countries or ()),
        international_rate_cap=account.international_rate_cap,
        max_call_time_domestic=account.max_call_time_domestic,
        max_call_time_international=account.max_call_time_international,
        e911_caller_id=account.e911_caller_id,
        dialing_mode=account.dialing_mode,
        caller_id_number=account.caller_id_number,
        allowed_codecs=tuple(account.allowed_codecs or ()),
        rtp_timeout=account.rtp_timeout,
        rtp_hold_timeout=account.rtp_hold_timeout,
        dtmf_mode=account.dtmf_mode,
        networks=tuple(ipaddress.ip_network(str(n), strict=False) for n in account.ip_restriction or ()),
        pops=frozenset(p.name for p in account.pop_restriction.all()),
        blocked_for_unpaid=account.blocked_for_unpaid,
    )


def _build(version: int) -> Snapshot:
    snap = Snapshot(version=version)
    customers: dict[int, authz.CustomerView] = {}
    pbx_address = dict(IpDevice.objects.values_list("pk", "address"))
    for account in Account.objects.select_related("customer").prefetch_related("pop_restriction"):
        customer = customers.get(account.customer_id)
        if customer is None:
            customer = customers[account.customer_id] = _customer_view(account.customer)
        view = _account_view(account, customer)
        snap.accounts[account.pk] = view
        snap.by_code[account.account_code] = account.pk
        for index in (snap.index, snap.index_all) if view.active and customer.active else (snap.index_all,):
            index.account(
                account.pk,
                account.customer_id,
                code=account.account_code,
                trunk=account.identifier if account.kind == AccountKind.TRUNK else "",
                extension=account.identifier if account.kind == AccountKind.EXTENSION else "",
                pbx=pbx_address.get(account.pbx_id, "")
                if account.kind == AccountKind.EXTENSION and account.pbx_id
                else "",
            )
            index.tenant(customer.code, account.customer_id)
    for dev in SipDevice.objects.filter(status=Status.ACTIVE):
        snap.by_sip[dev.login] = Device(f"sip:{dev.pk}", dev.account_id, dev.max_call_sessions, dev.calls_per_second)
        snap.index.device("sip_user", dev.login, dev.account_id)
        snap.index_all.device("sip_user", dev.login, dev.account_id)
    for ip_dev in IpDevice.objects.filter(status=Status.ACTIVE):
        snap.by_ip[ip_dev.address] = Device(
            f"ip:{ip_dev.pk}", ip_dev.account_id, ip_dev.max_call_sessions, ip_dev.calls_per_second
        )
        snap.index.device("source_ip", ip_dev.address, ip_dev.account_id)
        snap.index_all.device("source_ip", ip_dev.address, ip_dev.account_id)
    for number, account_id in VirtualNumber.objects.values_list("number", "account_id"):
        for index in (snap.index, snap.index_all):  # an extension of its customer's PBXs (core.identity)
            index.extension(account_id, number)
    for did in Did.objects.filter(status=DidStatus.ASSIGNED, account__isnull=False).select_related(
        "plan", "sip_device"
    ):
        plan = did.plan
        assert did.account_id is not None  # filtered: account__isnull=False
        snap.dids[did.number] = authz.DidView(
            number=did.number,
            account_id=did.account_id,
            forward_to=did.forward_number if did.destination == DidDestination.FORWARD else None,
            device_login=did.sip_device.login
            if did.destination == DidDestination.SIP_DEVICE and did.sip_device
            else "",
            plan=None
            if plan is None
            else authz.InboundPlan(plan.inbound_rate, plan.inbound_interval_1, plan.inbound_interval_n),
        )
        snap.account_dids.setdefault(did.account_id, set()).add(did.number)
    conn_rules: dict[int, list[Rule]] = {}
    for rule in TranslationRule.objects.filter(active=True).order_by("priority", "id"):
        item = Rule(rule.kind, rule.match, rule.replace, rule.dst_prefix)
        if rule.customer_id:
            snap.customer_rules.setdefault(rule.customer_id, []).append(item)
        else:
            conn_rules.setdefault(rule.connection_id, []).append(item)  # type: ignore[arg-type]
    for route in DialingRoute.objects.order_by("priority", "id"):
        snap.dialing_routes.setdefault(route.customer_id, []).append(
            authz.DialingPattern(route.dialing_pattern, route.routing_group_id)
        )
    for offer in RouteOffer.objects.all():
        snap.offers[(offer.destination_class, offer.choice, offer.tollfree_carrier)] = offer.routing_group_id
    entries: dict[int, list[RouteEntry]] = {}
    for entry in RoutingEntry.objects.filter(
        enabled=True, connection__enabled=True, connection__vendor__status=Status.ACTIVE
    ).select_related("connection__vendor"):
        conn = entry.connection
        entries.setdefault(entry.group_id, []).append(
            RouteEntry(
                connection_id=conn.pk,
                connection_name=conn.name,
                vendor=conn.vendor.name,
                address=f"{conn.host}:{conn.port}",
                transport=conn.transport,
                tech_prefix=conn.tech_prefix,
                max_channels=conn.max_channels,
                max_cps=conn.max_cps,
                destination_set_id=entry.destination_set_id,
                priority=entry.priority,
                weight=entry.weight,
                rules=tuple(conn_rules.get(conn.pk, ())),
                emergency_format=conn.emergency_format,
            )
        )
    for group in RoutingGroup.objects.all():
        snap.groups[group.pk] = Group(
            group.pk, group.name, group.policy, group.tariff_id, tuple(entries.get(group.pk, ()))
        )
    return snap


def snapshot() -> Snapshot:
    """The current snapshot, checking the shared version at most every CHECK_SECONDS."""
    now = time.monotonic()
    snap = _state["snapshot"]
    if snap is not None and now - _state["checked"] < CHECK_SECONDS:
        return snap
    version = current_version()
    _state["checked"] = now
    if snap is not None and snap.version == version:
        return snap
    with _lock:
        snap = _state["snapshot"]
        if snap is None or snap.version != version:
            snap = _build(version)
            _state["snapshot"] = snap
    return snap


def reset() -> None:
    """Forget the snapshot and the rate tables (tests)."""
    _state.update(version=None, checked=0.0, snapshot=None)
    _tables.clear()


def _changed(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    bump()


def connect_signals() -> None:
    for model in (
        Account,
        Customer,
        DialingRoute,
        IpDevice,
        SipDevice,
        TranslationRule,
        Did,
        DidPlan,
        VirtualNumber,
        Rate,
        Tariff,
        Connection,
        DestinationRate,
        DestinationSet,
        Pop,
        RouteOffer,
        RoutingEntry,
        RoutingGroup,
        Vendor,
    ):
        post_save.connect(_changed, sender=model, dispatch_uid=f"tarifa-cache-save-{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"tarifa-cache-delete-{model.__name__}")
    m2m_changed.connect(_changed, sender=Account.pop_restriction.through, dispatch_uid="tarifa-cache-pops")
    rates_written.connect(_changed, dispatch_uid="tarifa-cache-rates-written")  # deck imports' bulk writes
