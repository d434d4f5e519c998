from decimal import Decimal

import pytest

from tarifa.core.pools import price_with_pool
from tarifa.core.rating import RateTerms, call_cost

TERMS = RateTerms(price_1=Decimal("0.06"), price_n=Decimal("0.06"), interval_1=60, interval_n=60)


@pytest.mark.parametrize(
    ("duration", "remaining", "expected"),
    [
        (90, 0, (Decimal("0.1200"), 120, 0)),  # no pool left: 2 minutes charged
        (90, 600, (Decimal("0.0000"), 120, 120)),  # fully covered: uses the billed 120 s
        (90, 120, (Decimal("0.0000"), 120, 120)),  # exactly covered
        (150, 60, (Decimal("0.1200"), 180, 60)),  # 180 billed, 60 covered, 120 s charged
        (0, 600, (Decimal("0.0000"), 0, 0)),  # unanswered uses nothing
    ],
)
def test_pool_rule(duration: int, remaining: int, expected: tuple) -> None:
    assert price_with_pool(TERMS, duration, 4, "half_up", remaining) == expected


def test_partial_cover_prices_the_rest_like_a_call_of_its_own() -> None:
    terms = RateTerms(
        price_1=Decimal("0.10"), price_n=Decimal("0.10"), interval_1=30, interval_n=6, connect_fee=Decimal("0.05")
    )
    cost, billed, used = price_with_pool(terms, 100, 4, "half_up", 40)
    assert (billed, used) == (102, 40)
    assert cost == call_cost(terms, 62, 4, "half_up") == Decimal("0.1600")
