"""Process-local snapshots of what call authorisation reads on every call (accounts, devices,
rules, routing groups, rate tables), rebuilt when the shared ConfigVersion moves.

Every change to those models bumps the version in the database (signals below, and explicit
``bump()`` calls after raw bulk writes such as deck imports), so every app process on every
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
from tarifa.core.identity import AccountIndex
from tarifa.core.rating import RateTable
from tarifa.core.translate import Rule

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


@dataclass
class Device:
    key: str  # "sip:<id>" or "ip:<id>"
    account_id: int
    max_sessions: int | None
    cps: int | None


@dataclass
class RouteEntry:
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
    rules: list[Rule]
    emergency_format: str = ""  # "" : tech prefix + the emergency number; else "{number}" in it


@dataclass
class Group:
    id: int
    name: str
    policy: str
    tariff_id: int | None
    entries: list[RouteEntry]


@dataclass
class Snapshot:
    version: int
    accounts: dict[int, Any] = field(default_factory=dict)  # Account with customer loaded
    pops: dict[int, set[str]] = field(default_factory=dict)  # account id -> allowed POP names
    networks: dict[int, list[Any]] = field(default_factory=dict)  # account id -> ip networks
    homes: dict[int, str] = field(default_factory=dict)  # customer id -> home country (ISO code, US if none)
    by_sip: dict[str, Device] = field(default_factory=dict)
    by_ip: dict[str, Device] = field(default_factory=dict)
    by_trunk: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    # identities -> account in the one matching order (core.identity): active accounts of active
    # customers, and every account (a disabled one is then refused as disabled, not unknown)
    index: AccountIndex = field(default_factory=AccountIndex)
    index_all: AccountIndex = field(default_factory=AccountIndex)
    dids: dict[str, Any] = field(default_factory=dict)
    account_dids: dict[int, set[str]] = field(default_factory=dict)
    customer_rules: dict[int, list[Rule]] = field(default_factory=dict)
    dialing_routes: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    offers: dict[tuple[str, str, str], int] = field(default_factory=dict)
    groups: dict[int, Group] = field(default_factory=dict)
    _tariffs: dict[int, tuple[RateTable, str]] = field(default_factory=dict)
    _sets: dict[int, RateTable] = field(default_factory=dict)

    def tariff(self, tariff_id: int) -> tuple[RateTable, str]:
        if tariff_id not in self._tariffs:
            self._tariffs[tariff_id] = _table(("tariff", tariff_id))
        return self._tariffs[tariff_id]

    def destination_set(self, set_id: int) -> RateTable:
        if set_id not in self._sets:
            self._sets[set_id] = _table(("set", set_id))[0]
        return self._sets[set_id]


# Rate tables outlive snapshots: rebuilt only when their own rates changed (a cheap aggregate
# tells), so editing an account does not make every worker reload 60,000 rates. One lock per
# table: the threads of a worker wait for one load instead of all loading the same table.
_tables: dict[tuple[str, int], tuple[tuple, tuple[RateTable, str]]] = {}
_table_locks: dict[tuple[str, int], threading.Lock] = {}


def _table(key: tuple[str, int]) -> tuple[RateTable, str]:
    from tarifa.rating.models import Tariff
    from tarifa.rating.services import load_entries, rates_signature, tariff_signature, tariff_table
    from tarifa.routing.models import DestinationSet

    with _lock:
        lock = _table_locks.setdefault(key, threading.Lock())
    with lock:
        kind, pk = key
        if kind == "tariff":
            tariff = Tariff.objects.get(pk=pk)
            signature = tariff_signature(tariff)
            held = _tables.get(key)
            if held is None or held[0] != signature:
                held = (signature, (tariff_table(tariff), tariff.rounding))
                _tables[key] = held
        else:
            dset = DestinationSet.objects.get(pk=pk)
            signature = (dset.time_zone, dset.rounding, rates_signature(dset.rates.all()))
            held = _tables.get(key)
            if held is None or held[0] != signature:
                held = (signature, (RateTable(load_entries(dset.rates.all()), dset.time_zone), dset.rounding))
                _tables[key] = held
        return held[1]


def warm_up() -> None:
    """Load the snapshot and every rate table now (a worker's start), not on the first call."""
    from tarifa.rating.models import Tariff
    from tarifa.routing.models import DestinationSet

    snap = snapshot()
    for tariff_id in Tariff.objects.values_list("pk", flat=True):
        snap.tariff(tariff_id)
    for set_id in DestinationSet.objects.values_list("pk", flat=True):
        snap.destination_set(set_id)


def _build(version: int) -> Snapshot:
    from tarifa.customers.models import Account, DialingRoute, IpDevice, SipDevice, TranslationRule
    from tarifa.dids.models import Did
    from tarifa.routing.models import RouteOffer, RoutingEntry, RoutingGroup

    snap = Snapshot(version=version)
    for account in Account.objects.select_related("customer").prefetch_related("pop_restriction"):
        snap.accounts[account.pk] = account
        snap.by_code[account.account_code] = account.pk
        if account.kind == "trunk" and account.identifier:
            snap.by_trunk[account.identifier] = account.pk
        snap.pops[account.pk] = {p.name for p in account.pop_restriction.all()}
        snap.networks[account.pk] = [ipaddress.ip_network(str(n), strict=False) for n in account.ip_restriction or []]
        snap.homes[account.customer_id] = str(account.customer.country or "US")
        active = account.status == "active" and account.customer.status == "active"
        for index in (snap.index, snap.index_all) if active else (snap.index_all,):
            index.account(account.pk, account.customer_id, code=account.account_code,
                          trunk=account.identifier if account.kind == "trunk" else "",
                          extension=account.identifier if account.kind == "extension" else "")
            index.tenant(account.customer.account_code, account.customer_id)
    for dev in SipDevice.objects.filter(status="active"):
        snap.by_sip[dev.login] = Device(f"sip:{dev.pk}", dev.account_id, dev.max_call_sessions, dev.calls_per_second)
        snap.index.device("sip_user", dev.login, dev.account_id)
        snap.index_all.device("sip_user", dev.login, dev.account_id)
    for dev in IpDevice.objects.filter(status="active"):
        snap.by_ip[dev.address] = Device(f"ip:{dev.pk}", dev.account_id, dev.max_call_sessions, dev.calls_per_second)
        snap.index.device("source_ip", dev.address, dev.account_id)
        snap.index_all.device("source_ip", dev.address, dev.account_id)
    for did in Did.objects.filter(status="assigned", account__isnull=False).select_related("plan", "sip_device"):
        snap.dids[did.number] = did
        snap.account_dids.setdefault(did.account_id, set()).add(did.number)
    conn_rules: dict[int, list[Rule]] = {}
    for rule in TranslationRule.objects.filter(active=True).order_by("priority", "id"):
        item = Rule(rule.kind, rule.match, rule.replace, rule.dst_prefix)
        if rule.customer_id:
            snap.customer_rules.setdefault(rule.customer_id, []).append(item)
        else:
            conn_rules.setdefault(rule.connection_id, []).append(item)  # type: ignore[arg-type]
    for route in DialingRoute.objects.order_by("priority", "id"):
        snap.dialing_routes.setdefault(route.customer_id, []).append((route.dialing_pattern, route.routing_group_id))
    for offer in RouteOffer.objects.all():
        snap.offers[(offer.destination_class, offer.choice, offer.tollfree_carrier)] = offer.routing_group_id
    for group in RoutingGroup.objects.all():
        snap.groups[group.pk] = Group(group.pk, group.name, group.policy, group.tariff_id, [])
    entries = RoutingEntry.objects.filter(
        enabled=True, connection__enabled=True, connection__vendor__status="active"
    ).select_related("connection__vendor")
    for entry in entries:
        conn = entry.connection
        snap.groups[entry.group_id].entries.append(RouteEntry(
            connection_id=conn.pk, connection_name=conn.name, vendor=conn.vendor.name,
            address=f"{conn.host}:{conn.port}", transport=conn.transport, tech_prefix=conn.tech_prefix,
            max_channels=conn.max_channels, max_cps=conn.max_cps, destination_set_id=entry.destination_set_id,
            priority=entry.priority, weight=entry.weight, rules=conn_rules.get(conn.pk, []),
            emergency_format=conn.emergency_format,
        ))
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
    from tarifa.customers.models import Account, Customer, DialingRoute, IpDevice, SipDevice, TranslationRule
    from tarifa.dids.models import Did, DidPlan
    from tarifa.rating.models import Rate, Tariff
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

    for model in (Account, Customer, DialingRoute, IpDevice, SipDevice, TranslationRule, Did, DidPlan, Rate, Tariff,
                  Connection, DestinationRate, DestinationSet, Pop, RouteOffer, RoutingEntry, RoutingGroup, Vendor):
        post_save.connect(_changed, sender=model, dispatch_uid=f"tarifa-cache-save-{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"tarifa-cache-delete-{model.__name__}")
    m2m_changed.connect(_changed, sender=Account.pop_restriction.through, dispatch_uid="tarifa-cache-pops")
