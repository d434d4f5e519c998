from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tarifa.core.lockout import LockoutPolicy, released_at

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = LockoutPolicy(limit=3, window=timedelta(minutes=15), lockout=timedelta(minutes=10))


def at(*minutes: float) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in minutes]


def test_below_the_limit_is_not_locked() -> None:
    assert released_at(at(0, 1), POLICY, T0 + timedelta(minutes=2)) is None


def test_the_limit_locks_until_the_last_failure_plus_the_lockout() -> None:
    assert released_at(at(0, 1, 2), POLICY, T0 + timedelta(minutes=3)) == T0 + timedelta(minutes=12)


def test_the_lock_ends_at_the_announced_time() -> None:
    assert released_at(at(0, 1, 2), POLICY, T0 + timedelta(minutes=12)) is None


def test_failures_outside_the_window_do_not_count() -> None:
    assert released_at(at(0, 20, 21), POLICY, T0 + timedelta(minutes=22)) is None


def test_a_window_longer_than_the_lockout_locks_again_on_the_next_failure() -> None:
    policy = LockoutPolicy(limit=3, window=timedelta(hours=1), lockout=timedelta(minutes=10))
    assert released_at(at(0, 1, 2, 13), policy, T0 + timedelta(minutes=13)) == T0 + timedelta(minutes=23)


def test_future_failures_are_ignored() -> None:
    assert released_at(at(0, 1, 30), POLICY, T0 + timedelta(minutes=2)) is None
