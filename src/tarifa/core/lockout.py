"""Log-in lock-out: after too many failed log-ins in a window, refuse further tries for a while.

The rule, for one key (a user name, or a client address)::

    recent   = failures at t with now - window < t <= now
    locked   = len(recent) >= limit
    released = the most recent failure + lockout

While locked, tries are refused without looking at the password and are not recorded, so the most
recent failure is the one that reached the limit and a lock-out ends at a fixed, announced time
however hard someone keeps trying. After it, failures still inside the window count again (with
``window`` longer than ``lockout``, one more failure locks again at once). Pure: the caller reads
the failure times from the database (several processes share them) and passes ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["LockoutPolicy", "released_at"]


@dataclass(frozen=True)
class LockoutPolicy:
    """``limit`` failures within ``window`` lock the key for ``lockout``."""

    limit: int
    window: timedelta
    lockout: timedelta


def released_at(failures: Iterable[datetime], policy: LockoutPolicy, now: datetime) -> datetime | None:
    """When the key's lock-out ends, or None when it is not locked at ``now``."""
    recent = sorted((t for t in failures if now - policy.window < t <= now), reverse=True)
    if len(recent) < policy.limit:
        return None
    until = recent[0] + policy.lockout
    return until if until > now else None
