"""How a validated deck becomes rate versions: what is added, changed, ended or left alone.

The rule (docs/rating.md, "Importing a deck"): **an import never changes the price of a call
before** ``at`` (``--at``, default now). A rate's history is its versions: (prefix, period) keys
with an ``[effective_from, effective_to)`` window each, the latest ``effective_from`` winning where
windows overlap (DESIGN.md §3). So a price change ends the version in force and adds a new one
from ``at``: a CDR re-rated for an earlier date still finds the price of that date.

* A row without ``effective_from`` takes effect at ``at``. Two exceptions keep the file an exact
  picture of the stored deck: a row identical to the stored "since ever" version of its key is
  that version (an exported deck writes "since ever" as an empty cell); and in *add* mode without
  an explicit ``at``, a key that has no version at all is priced "since ever" (a new destination
  fills a gap: calls that found no rate can be re-rated).
* A row with ``effective_from`` is the version from that moment. Refused when it would change the
  price of calls before ``at`` that had one: pass an earlier ``at`` to rewrite the past on purpose.
* A row that changes no price at any moment (compared on the whole timeline of its key) changes
  nothing: it is *unchanged*, in both modes.
* A row whose start equals a stored version's start replaces that version in place (the
  unique key is (prefix, period, effective_from)); allowed only when no price before ``at`` moves.
* Otherwise the row is a new version; the version in force at its start is end-dated there when
  that changes no price (a promotion with an end date leaves the regular price to come back).
* *replace* mode also ends, at ``at``, every version in force then whose key the deck lacks.

Pure: plain dataclasses in, a plan out; ``tarifa.rating.decks`` applies it in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Final, Literal

from tarifa.core.deck import SINCE_EVER, DeckError, DeckRow, format_money

__all__ = ["PRICE_FIELDS", "ImportPlan", "Mode", "StoredVersion", "in_force", "plan_import"]

Mode = Literal["add", "replace"]
#: What a version prices: everything but its window.
PRICE_FIELDS: Final = (
    "destination",
    "price_1",
    "price_n",
    "interval_1",
    "interval_n",
    "connect_fee",
    "free_seconds",
    "grace_period",
    "post_call_surcharge",
    "min_charge",
    "forbidden",
)
#: How many changes the summary lists one by one.
DETAIL_MAX: Final = 50

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A stored rate version: its row id and its terms (``effective_from`` is never ``None``)."""

    id: int
    row: DeckRow


@dataclass(slots=True)
class _Version:
    """A working copy: a stored version (``id``) or one this import adds (``id`` None)."""

    id: int | None
    row: DeckRow
    touched: Literal["", "end", "terms"] = ""  # what an update of a stored version changes

    @property
    def start(self) -> datetime:
        return self.row.effective_from or SINCE_EVER

    @property
    def end(self) -> datetime | None:
        return self.row.effective_to


@dataclass
class ImportPlan:
    """What an import does. ``errors`` not empty: do nothing at all."""

    at: datetime
    inserts: list[DeckRow] = field(default_factory=list)
    updates: list[tuple[int, DeckRow]] = field(default_factory=list)  # stored versions with new terms
    ends: list[tuple[int, datetime | None]] = field(default_factory=list)  # stored versions with a new end
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    ended: int = 0
    superseded: int = 0
    details: list[str] = field(default_factory=list)
    more: int = 0
    errors: list[DeckError] = field(default_factory=list)

    def note(self, text: Callable[[], str]) -> None:
        """Add a line to the summary; built only while the list is short (a 60,000-row deck)."""
        if len(self.details) < DETAIL_MAX:
            self.details.append(text())
        else:
            self.more += 1

    def __str__(self) -> str:
        return (
            f"{self.added} added, {self.changed} changed ({self.superseded} old version(s) end-dated), "
            f"{self.unchanged} unchanged, {self.ended} ended (not in the deck); "
            f"rows without effective_from take effect at {when(self.at)}"
        )


def when(moment: datetime | None) -> str:
    if moment is None:
        return "open-ended"
    return "since ever" if moment == SINCE_EVER else moment.isoformat()


def _label(key: Key) -> str:
    prefix, period = key
    return f"{prefix} ({period})" if period else prefix


_prices = attrgetter(*PRICE_FIELDS)


def _same_price(a: DeckRow, b: DeckRow) -> bool:
    """Same terms (``Decimal`` compares by value: 0.02 == 0.020000)."""
    return bool(_prices(a) == _prices(b))


def _ended(version: _Version, end: datetime) -> _Version:
    """``version`` end-dated at ``end`` (an update of its terms, if pending, is kept)."""
    return _Version(version.id, replace(version.row, effective_to=end), touched=version.touched or "end")


def in_force(rows: Iterable[DeckRow], t: datetime) -> DeckRow | None:
    """The version of one (prefix, period) that prices calls at ``t``: the latest start <= t
    among the windows holding t (an empty ``effective_from`` is "since ever")."""
    found = _in_force([_Version(None, row) for row in rows], t)
    return found.row if found else None


def _in_force(versions: Sequence[_Version], t: datetime) -> _Version | None:
    chosen: _Version | None = None
    for v in versions:
        if v.start <= t and (v.end is None or t < v.end) and (chosen is None or v.start > chosen.start):
            chosen = v
    return chosen


def _timeline(versions: Sequence[_Version], moments: Sequence[datetime]) -> list[DeckRow | None]:
    return [(found.row if (found := _in_force(versions, t)) else None) for t in moments]


def _moments(*groups: Sequence[_Version]) -> list[datetime]:
    points = {SINCE_EVER}
    for group in groups:
        for v in group:
            points.add(v.start)
            if v.end is not None:
                points.add(v.end)
    return sorted(points)


def _first_difference(
    before: Sequence[_Version], after: Sequence[_Version], until: datetime | None
) -> tuple[datetime, bool] | None:
    """The first moment (before ``until`` if given) whose price differs, and whether it had one."""
    moments = _moments(before, after)
    for t, old, new in zip(moments, _timeline(before, moments), _timeline(after, moments), strict=True):
        if until is not None and t >= until:
            return None
        if (old is None) != (new is None) or (old is not None and new is not None and not _same_price(old, new)):
            return t, old is not None
    return None


def _rewrites_past(before: Sequence[_Version], after: Sequence[_Version], at: datetime) -> datetime | None:
    """The first moment before ``at`` whose existing price ``after`` would change (gaps may fill)."""
    moments = [t for t in _moments(before, after) if t < at]
    for t, old, new in zip(moments, _timeline(before, moments), _timeline(after, moments), strict=True):
        if old is not None and (new is None or not _same_price(old, new)):
            return t
    return None


def _describe(old: DeckRow, new: DeckRow) -> str:
    parts = []
    for name in PRICE_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if isinstance(a, Decimal):
            if Decimal(a) != Decimal(b):
                parts.append(f"{name} {format_money(a)} -> {format_money(b)}")
        elif a != b:
            parts.append(f"{name} {a!r} -> {b!r}" if isinstance(a, str) else f"{name} {a} -> {b}")
    return ", ".join(parts) or "window"


def plan_import(
    stored: Sequence[StoredVersion], rows: Sequence[DeckRow], mode: Mode, at: datetime, *, at_given: bool = True
) -> ImportPlan:
    """The versions to add and the stored versions to update for ``rows`` (see the module doc).

    ``at`` is timezone-aware; ``at_given`` False means it is only "now" by default (add mode then
    prices a brand-new key since ever).
    """
    if mode not in ("add", "replace"):
        raise ValueError(f"mode {mode!r} is refused: must be add or replace")
    plan = ImportPlan(at=at)
    by_key: dict[Key, list[_Version]] = {}
    for kept in stored:
        by_key.setdefault((kept.row.prefix, kept.row.period), []).append(_Version(kept.id, kept.row))
    deck_keys: dict[Key, list[DeckRow]] = {}
    for row in rows:
        deck_keys.setdefault((row.prefix, row.period), []).append(row)

    for key, key_rows in deck_keys.items():
        versions = by_key.setdefault(key, [])
        resolved: list[tuple[datetime, DeckRow]] = []
        for row in key_rows:
            start = row.effective_from
            if start is None:
                since_ever = next((v for v in versions if v.start == SINCE_EVER and v.id is not None), None)
                if (since_ever and _same_price(since_ever.row, row) and since_ever.end == row.effective_to) or (
                    not versions and mode == "add" and not at_given
                ):
                    start = SINCE_EVER
                else:
                    start = at
                if row.effective_to is not None and row.effective_to <= start:
                    plan.errors.append(
                        DeckError(
                            row.line,
                            "effective_to",
                            row.effective_to.isoformat(),
                            f"must be later than the moment the row takes effect ({when(start)}: "
                            "a row without effective_from takes effect at --at, default now)",
                        )
                    )
                    continue
            resolved.append((start, row if row.effective_from == start else replace(row, effective_from=start)))
        resolved.sort(key=lambda pair: pair[0])
        seen: dict[datetime, int] = {}
        for start, row in resolved:
            if start in seen:
                plan.errors.append(
                    DeckError(
                        row.line,
                        "effective_from",
                        when(start),
                        f"same prefix, period and start as line {seen[start]} "
                        "(a row without effective_from starts at --at)",
                    )
                )
                continue
            seen[start] = row.line
            _apply(plan, key, versions, row, at)

    if mode == "replace":
        for key, versions in by_key.items():
            if key in deck_keys:
                continue
            for version in versions:
                if version.start < at and (version.end is None or version.end > at):
                    version.row = replace(version.row, effective_to=at)
                    version.touched = version.touched or "end"
                    plan.ended += 1
                    plan.note(lambda: f"{_label(key)}: ended at {when(at)} (not in the deck)")  # noqa: B023 (called at once)

    for versions in by_key.values():
        for version in versions:
            if version.id is None:
                plan.inserts.append(version.row)
            elif version.touched == "end":
                plan.ends.append((version.id, version.end))
            elif version.touched:
                plan.updates.append((version.id, version.row))
    if plan.more:
        plan.details.append(f"... and {plan.more} more")
    return plan


def _apply(plan: ImportPlan, key: Key, versions: list[_Version], row: DeckRow, at: datetime) -> None:
    """One deck row against the working versions of its key."""
    start = row.effective_from or SINCE_EVER
    if not versions:  # fast path: a key without history gets its first version
        versions.append(_Version(None, row))
        plan.added += 1
        plan.note(lambda: f"{_label(key)}: added from {when(start)} until {when(row.effective_to)}")
        return
    exact = next((v for v in versions if v.start == start), None)
    if exact is not None and exact.end == row.effective_to and _same_price(exact.row, row):
        plan.unchanged += 1  # fast path: the very version that is stored
        return
    if len(versions) == 1 and exact is None and row.effective_to is None:
        # Fast path, the common case: one open version before the row's start, the row open too.
        only = versions[0]
        if only.start < start and only.end is None:
            if _same_price(only.row, row):
                plan.unchanged += 1
                return
            if start >= at:
                versions[:] = [_ended(only, start), _Version(None, row)]
                plan.changed += 1
                plan.superseded += 1
                plan.note(
                    lambda: (
                        f"{_label(key)}: {_describe(only.row, row)} from {when(start)}; "
                        f"version from {when(only.start)} end-dated at {when(start)}"
                    )
                )
                return
    current = exact or _in_force(versions, start)
    ended = False
    if exact is not None:
        after = [v if v is not exact else _Version(v.id, row, touched="terms") for v in versions]
    else:
        candidate = _Version(None, row)
        after = [*versions, candidate]
        if current is not None:
            # End the version in force at the start where that changes no price (it is superseded
            # from there); a row with an end date may leave it to price the calls after that end.
            shortened = [v if v is not current else _ended(v, start) for v in versions]
            if _first_difference([*shortened, candidate], after, None) is None:
                after = [*shortened, candidate]
                ended = True
    if _first_difference(versions, after, None) is None:
        plan.unchanged += 1
        return
    past = _rewrites_past(versions, after, at)
    if past is not None:
        plan.errors.append(
            DeckError(
                row.line,
                "effective_from",
                when(row.effective_from),
                f"would change the price of {_label(key)} for calls from {when(past)}, before --at "
                f"({when(at)}): an import never rewrites past prices; give a later effective_from, leave it "
                "empty to change the price from --at, or pass an earlier --at to rewrite the past on purpose",
            )
        )
        return
    versions[:] = after
    if exact is not None:
        plan.changed += 1
        plan.note(lambda: f"{_label(key)}: version from {when(start)} corrected in place ({_describe(exact.row, row)})")
    elif current is None:
        plan.added += 1
        plan.note(lambda: f"{_label(key)}: added from {when(start)} until {when(row.effective_to)}")
    else:
        plan.changed += 1
        if ended:
            plan.superseded += 1
        ended_text = f"; version from {when(current.start)} end-dated at {when(start)}" if ended else ""
        plan.note(lambda: f"{_label(key)}: {_describe(current.row, row)} from {when(start)}{ended_text}")
