"""Check, record and clear failed log-ins (the adapter between ``core.lockout`` and the table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from tarifa import config
from tarifa.changes import address_of
from tarifa.core.lockout import LockoutPolicy, released_at
from tarifa.throttle.models import LoginFailure

Scope = LoginFailure.Scope

#: The log-in doors. Each counts its own failures per user name (attack finding 2): the portal never
#: lets staff in, so wrong passwords typed there for a staff user name must not lock that user out of
#: the back office (nor the back office's a customer out of the portal). Per address, the doors share
#: one count: an address that guesses at one door is refused at the other too.
ADMIN = "admin"
PORTAL = "portal"
DOORS = (ADMIN, PORTAL)


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


def _user_key(username: str, door: str) -> str:
    """``<door>:<user name>`` (user names cannot hold ``:``, so the doors' keys never meet)."""
    if door not in DOORS:
        raise ValueError(f"unknown log-in door {door!r}")
    return f"{door}:{username.strip().casefold()}"[:150]


def _keys(username: str, address: str, door: str) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = [(Scope.ADDRESS, address)]
    if username.strip():
        keys.insert(0, (Scope.USER, _user_key(username, door)))
    return keys


def lock_for(username: str, address: str, now: datetime | None = None, *, door: str = ADMIN) -> Lock | None:
    """The lock-out that refuses this log-in at ``door`` now (the one that ends last), or None."""
    now = now or timezone.now()
    policies = _policies()
    locks = []
    for scope, key in _keys(username, address, door):
        policy = policies[scope]
        times = LoginFailure.objects.filter(scope=scope, key=key, at__gt=now - policy.window).values_list(
            "at", flat=True
        )
        until = released_at(times, policy, now)
        if until is not None:
            shown = username.strip() if scope == Scope.USER else key
            locks.append(Lock(scope, shown, until))
    return max(locks, key=lambda lock: lock.until) if locks else None


def begin_attempt(username: str, address: str, now: datetime | None = None, *, door: str = ADMIN) -> Lock | list[int]:
    """Before a password is checked: the lock-out that refuses this try, or the ids of the rows that
    count it as a failure from now on -- until ``end_attempt`` says it succeeded.

    Checking and counting are one step (issue 12, low): a check followed later by a separate insert
    let concurrent wrong tries all pass the check before any was counted, so a burst got more tries
    than the limit. Here the tries of one key are serialised -- on SQLite by the transaction's write
    lock (taken at BEGIN: ``transaction_mode`` IMMEDIATE), on PostgreSQL by a transaction-level advisory
    lock per key -- and a try is counted in the same transaction that found the key unlocked, so no
    more than the limit's tries ever reach the password check within a window."""
    keys = _keys(username, address, door)
    with transaction.atomic():
        _serialise(keys)
        now = now or timezone.now()  # read once the lock is held: a try counted before this one is never "later"
        lock = lock_for(username, address, now, door=door)
        if lock is not None:
            return lock
        oldest = now - max(p.window for p in _policies().values())
        _logins().filter(at__lte=oldest).delete()
        rows = LoginFailure.objects.bulk_create([LoginFailure(scope=s, key=k, at=now) for s, k in keys])
    return [row.pk for row in rows]


def end_attempt(attempt: list[int], username: str, outcome: str, *, door: str = ADMIN) -> None:
    """What became of a try ``begin_attempt`` counted: ``"failed"`` (a wrong password: it stays
    counted), ``"succeeded"`` (the user's earlier failures are forgotten, see ``record_success``) or
    ``"void"`` (the password was not checked, or was right for a user who may not log in: not a
    guess that failed, so not counted)."""
    if outcome == "failed":
        return
    LoginFailure.objects.filter(pk__in=attempt).delete()
    if outcome == "succeeded":
        record_success(username, door=door)


def _serialise(keys: list[tuple[str, str]]) -> None:
    """Make the other tries of these keys wait for this transaction (PostgreSQL; SQLite's write lock
    already does). Locks are taken in one order so two tries never wait for each other."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for scope, key in sorted(keys):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"tarifa.login {scope} {key}"])


def record_failure(username: str, address: str, now: datetime | None = None, *, door: str = ADMIN) -> None:
    """Count a failed log-in under its user name (at ``door``) and its address; forget failures past
    every window."""
    now = now or timezone.now()
    oldest = now - max(p.window for p in _policies().values())
    _logins().filter(at__lte=oldest).delete()
    LoginFailure.objects.bulk_create([LoginFailure(scope=s, key=k, at=now) for s, k in _keys(username, address, door)])


def record_success(username: str, *, door: str = ADMIN) -> None:
    """A log-in succeeded at ``door``: the user's earlier typos there no longer count. The address's
    failures stay, so an attacker with one valid account cannot reset the count for the others."""
    LoginFailure.objects.filter(scope=Scope.USER, key=_user_key(username, door)).delete()


def _logins() -> models.QuerySet[LoginFailure]:
    """The log-in rows (sign-ups keep their own, longer window: see ``count_signup``)."""
    return LoginFailure.objects.filter(scope__in=(Scope.USER, Scope.ADDRESS))


#: The portal's sign-ups per client address are counted over an hour, locked for an hour at the limit.
SIGNUP_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class SignupLock:
    """Why a sign-up from an address is refused and until when (UTC)."""

    address: str
    until: datetime

    def message(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        minutes = max(1, -(-int((self.until - now).total_seconds()) // 60))
        return (
            f"Too many sign-ups from address {self.address}: sign-up is closed for it until "
            f"{self.until:%Y-%m-%d %H:%M:%S} UTC (in {minutes} minute{'s' if minutes != 1 else ''}). Try again then."
        )


def count_signup(address: str, now: datetime | None = None) -> SignupLock | None:
    """Count one sign-up try from ``address`` (TARIFA_SIGNUP_PER_ADDRESS per hour), or the lock
    that refuses it. Checked and counted in one transaction, serialised per address as log-ins are."""
    policy = LockoutPolicy(config.signup().per_address, SIGNUP_WINDOW, SIGNUP_WINDOW)
    with transaction.atomic():
        _serialise([(Scope.SIGNUP, address)])
        now = now or timezone.now()
        LoginFailure.objects.filter(scope=Scope.SIGNUP, at__lte=now - SIGNUP_WINDOW).delete()
        times = LoginFailure.objects.filter(scope=Scope.SIGNUP, key=address[:150]).values_list("at", flat=True)
        until = released_at(times, policy, now)
        if until is not None:
            return SignupLock(address, until)
        LoginFailure.objects.create(scope=Scope.SIGNUP, key=address[:150], at=now)
    return None
