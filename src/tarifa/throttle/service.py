"""Check, record and clear failed log-ins (the adapter between ``core.lockout`` and the table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from tarifa import config
from tarifa.core.lockout import LockoutPolicy, released_at
from tarifa.throttle.models import LoginFailure

Scope = LoginFailure.Scope


@dataclass(frozen=True)
class Lock:
    """Why log-ins are refused and until when (UTC)."""

    scope: str
    key: str
    until: datetime

    def message(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        minutes = max(1, -(-int((self.until - now).total_seconds()) // 60))
        what = f"for user name {self.key!r}" if self.scope == Scope.USER else f"from address {self.key}"
        return (
            f"Too many failed log-ins {what}: log-in is locked until "
            f"{self.until:%Y-%m-%d %H:%M:%S} UTC (in {minutes} minute{'s' if minutes != 1 else ''}). Try again then."
        )


def _policies() -> dict[str, LockoutPolicy]:
    settings = config.login_throttle()
    window, lockout = timedelta(seconds=settings.window_seconds), timedelta(seconds=settings.lockout_seconds)
    return {
        Scope.USER: LockoutPolicy(settings.per_user, window, lockout),
        Scope.ADDRESS: LockoutPolicy(settings.per_address, window, lockout),
    }


def client_address(request: HttpRequest) -> str:
    """The client's address (see ``address_of``)."""
    return address_of(request.META)


def address_of(meta: Mapping[str, Any]) -> str:
    """The client's address of a request's META / WSGI environ: REMOTE_ADDR, or with
    TARIFA_TRUSTED_PROXIES=n the n-th address from the right of X-Forwarded-For (each proxy appends
    the address it saw; the left end is the client's word)."""
    proxies = config.trusted_proxies()
    remote = meta.get("REMOTE_ADDR", "") or "unknown"
    if proxies:
        hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies][:150]
    return remote[:150]


def _user_key(username: str) -> str:
    return username.strip().casefold()[:150]


def _keys(username: str, address: str) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = [(Scope.ADDRESS, address)]
    if username.strip():
        keys.insert(0, (Scope.USER, _user_key(username)))
    return keys


def lock_for(username: str, address: str, now: datetime | None = None) -> Lock | None:
    """The lock-out that refuses this log-in now (the one that ends last), or None."""
    now = now or timezone.now()
    policies = _policies()
    locks = []
    for scope, key in _keys(username, address):
        policy = policies[scope]
        times = LoginFailure.objects.filter(scope=scope, key=key, at__gt=now - policy.window).values_list("at", flat=True)
        until = released_at(times, policy, now)
        if until is not None:
            shown = username.strip() if scope == Scope.USER else key
            locks.append(Lock(scope, shown, until))
    return max(locks, key=lambda lock: lock.until) if locks else None


def record_failure(username: str, address: str, now: datetime | None = None) -> None:
    """Count a failed log-in under its user name and its address; forget failures past every window."""
    now = now or timezone.now()
    oldest = now - max(p.window for p in _policies().values())
    LoginFailure.objects.filter(at__lte=oldest).delete()
    LoginFailure.objects.bulk_create([LoginFailure(scope=s, key=k, at=now) for s, k in _keys(username, address)])


def record_success(username: str) -> None:
    """A log-in succeeded: the user's earlier typos no longer count. The address's failures stay, so
    an attacker with one valid account cannot reset the count for the others."""
    LoginFailure.objects.filter(scope=Scope.USER, key=_user_key(username)).delete()
