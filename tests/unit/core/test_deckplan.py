"""The versioning rule of a deck import, without a database (core.deckplan)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tarifa.core.deck import SINCE_EVER, DeckRow
from tarifa.core.deckplan import StoredVersion, plan_import

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
APR = datetime(2026, 4, 1, tzinfo=UTC)


def row(
    prefix: str = "44",
    price: str = "0.02",
    start: datetime | None = None,
    end: datetime | None = None,
    line: int = 2,
    period: str = "",
    destination: str = "UK",
) -> DeckRow:
    p = Decimal(price)
    return DeckRow(
        line=line,
        prefix=prefix,
        destination=destination,
        price_1=p,
        price_n=p,
        interval_1=60,
        interval_n=60,
        connect_fee=Decimal(0),
        free_seconds=0,
        grace_period=0,
        post_call_surcharge=Decimal(0),
        min_charge=Decimal(0),
        effective_from=start,
        effective_to=end,
        period=period,
        forbidden=False,
    )


def stored(pk: int, r: DeckRow) -> StoredVersion:
    return StoredVersion(pk, replace(r, line=0, effective_from=r.effective_from or SINCE_EVER))


def test_first_import_in_add_mode_is_since_ever_and_with_at_from_at() -> None:
    plan = plan_import([], [row()], "add", FEB, at_given=False)
    assert [r.effective_from for r in plan.inserts] == [SINCE_EVER] and plan.added == 1
    plan = plan_import([], [row()], "add", FEB, at_given=True)
    assert [r.effective_from for r in plan.inserts] == [FEB]
    plan = plan_import([], [row()], "replace", FEB, at_given=False)
    assert [r.effective_from for r in plan.inserts] == [FEB]


@pytest.mark.parametrize("mode", ["add", "replace"])
def test_an_unchanged_row_changes_nothing(mode: str) -> None:
    plan = plan_import([stored(1, row())], [row(price="0.020000")], mode, FEB)  # type: ignore[arg-type]
    assert (plan.unchanged, plan.inserts, plan.updates, plan.ends) == (1, [], [], [])


@pytest.mark.parametrize("mode", ["add", "replace"])
def test_a_price_change_ends_the_old_version_at_at(mode: str) -> None:
    plan = plan_import([stored(1, row())], [row(price="0.03")], mode, FEB)  # type: ignore[arg-type]
    assert (plan.changed, plan.superseded) == (1, 1)
    assert plan.ends == [(1, FEB)]
    assert [(r.price_1, r.effective_from, r.effective_to) for r in plan.inserts] == [(Decimal("0.03"), FEB, None)]
    assert plan.details == [
        "44: price_1 0.02 -> 0.03, price_n 0.02 -> 0.03 from 2026-02-01T00:00:00+00:00; "
        "version from since ever end-dated at 2026-02-01T00:00:00+00:00"
    ]


def test_an_exported_history_reimports_unchanged() -> None:
    old = stored(1, row(end=FEB))
    new = stored(2, row(price="0.03", start=FEB))
    deck = [row(end=FEB), row(price="0.03", start=FEB, line=3)]
    plan = plan_import([old, new], deck, "replace", MAR)
    assert (plan.unchanged, plan.changed, plan.added, plan.ended) == (2, 0, 0, 0)


def test_same_deck_twice_is_idempotent_with_a_scheduled_change() -> None:
    deck = [row(price="0.02"), row(price="0.04", start=APR, line=3)]
    first = plan_import([stored(1, row(price="0.01"))], deck, "add", FEB)
    assert (first.changed, first.added) == (2, 0)
    versions = [stored(1, row(price="0.01", end=FEB))] + [stored(10 + n, r) for n, r in enumerate(first.inserts)]
    assert [(r.price_1, r.effective_from, r.effective_to) for r in first.inserts] == [
        (Decimal("0.02"), FEB, APR),
        (Decimal("0.04"), APR, None),
    ]
    second = plan_import(versions, deck, "add", MAR)
    assert (second.unchanged, second.changed, second.inserts, second.ends) == (2, 0, [], [])


def test_a_dated_row_before_at_that_changes_a_price_is_refused() -> None:
    plan = plan_import([stored(1, row())], [row(price="0.05", start=JAN)], "add", FEB)
    assert [(e.line, e.field, e.value) for e in plan.errors] == [(2, "effective_from", "2026-01-01T00:00:00+00:00")]
    assert "never rewrites past prices" in plan.errors[0].rule
    # A dated row filling a gap (no price before) is no rewrite.
    plan = plan_import([stored(1, row(start=MAR))], [row(price="0.05", start=JAN, end=MAR)], "add", APR)
    assert plan.errors == [] and plan.added == 1


def test_a_future_version_is_corrected_in_place() -> None:
    plan = plan_import(
        [stored(1, row()), stored(2, row(price="0.03", start=APR))], [row(price="0.035", start=APR)], "add", FEB
    )
    assert plan.updates and plan.updates[0][0] == 2 and plan.updates[0][1].price_1 == Decimal("0.035")
    assert (plan.changed, plan.inserts) == (1, [])


def test_a_promotion_does_not_end_the_regular_price() -> None:
    plan = plan_import([stored(1, row())], [row(price="0.01", start=MAR, end=APR)], "add", FEB)
    assert (plan.changed, plan.superseded, plan.ends) == (1, 0, [])


def test_replace_ends_absent_keys_at_at_and_spares_other_periods() -> None:
    versions = [stored(1, row()), stored(2, row(prefix="33")), stored(3, row(period="mon-fri 08:00-18:00"))]
    plan = plan_import(versions, [row()], "replace", FEB)
    assert sorted(plan.ends) == [(2, FEB), (3, FEB)] and plan.ended == 2 and plan.unchanged == 1


def test_a_row_ending_before_it_starts_is_refused() -> None:
    plan = plan_import([stored(1, row())], [row(price="0.03", end=JAN)], "add", FEB)
    assert [(e.field, e.value) for e in plan.errors] == [("effective_to", "2026-01-01T00:00:00+00:00")]
    assert "takes effect" in plan.errors[0].rule


def test_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="must be add or replace"):
        plan_import([], [], "merge", FEB)  # type: ignore[arg-type]
