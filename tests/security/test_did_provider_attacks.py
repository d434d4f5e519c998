"""A hostile or broken origination provider (attack findings 7-10): redirects that would carry
the token elsewhere, answers nested too deeply to parse, answers trickled a byte at a time, offers
of numbers that were not asked for. Each is refused with a message, nothing is stored, and a
number already bought is released back to the provider."""

from __future__ import annotations

import time
from datetime import date

import pytest

from tarifa.dids.models import Did
from tarifa.dids.ordering import order_did
from tarifa.dids.providers import HttpDidProvider, ProviderError
from tarifa.dids.service import DidRefused
from tests.fake_did_provider import FakeProvider, running

pytestmark = pytest.mark.django_db

D = date(2026, 3, 10)
DEEP = b'{"number": "+12125550100", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"


@pytest.fixture
def world(did_buyer):  # type: ignore[no-untyped-def]
    return did_buyer


def _order(world, provider: HttpDidProvider):  # type: ignore[no-untyped-def]
    return order_did(world["account"], world["plan"], country="US", area_code="212", provider=provider, on=D)


def test_a_redirect_is_not_followed_and_the_token_stays_home(world) -> None:
    with running(FakeProvider([], token="other")) as elsewhere, running(FakeProvider(["+12125550100"])) as fake:
        fake.redirect_to = elsewhere.url
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=5)
        with pytest.raises(DidRefused) as caught:
            _order(world, provider)
    assert elsewhere.authorizations == []  # the other host was never called, so never saw the token
    assert "redirect (HTTP 302" in str(caught.value) and "not followed" in str(caught.value)
    assert not Did.objects.exists()


def test_an_order_answer_nested_too_deeply_is_refused_and_the_number_released(world) -> None:
    with running(FakeProvider(["+12125550100"])) as fake:
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=10)
        offers = provider.search("US", "212", 5)  # the search answer is sane
        fake.raw_answer = DEEP
        with pytest.raises(ProviderError, match="is not JSON Tarifa can read"):
            provider.search("US", "212", 5)
        fake.raw_answer = None
        fake.numbers.append("+12125550100")

        # the order's answer only is the deep one
        original = fake.handler

        def deep_orders():  # type: ignore[no-untyped-def]
            handler = original()

            class Deep(handler):  # type: ignore[misc, valid-type]
                def do_POST(self) -> None:
                    fake.raw_answer = DEEP
                    try:
                        super().do_POST()
                    finally:
                        fake.raw_answer = None

            return Deep

        fake.handler = deep_orders  # type: ignore[method-assign]
    with running(fake):
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=10)
        with pytest.raises(DidRefused) as caught:
            _order(world, provider)
    assert offers[0].number == "12125550100"
    assert "the order failed, nothing was assigned" in str(caught.value)
    assert "is not JSON Tarifa can read" in str(caught.value)
    assert fake.releases == ["+12125550100"]  # bought, so given back as docs/dids.md promises
    assert not Did.objects.exists()


@pytest.mark.parametrize("call", ["search", "order", "release"])
def test_the_timeout_bounds_the_whole_call_of_a_trickling_provider(call: str) -> None:
    fake = FakeProvider(["+12125550100"])
    fake.raw_answer = b'{"numbers": [], "number": "+12125550100", "padding": "' + b"x" * 200 + b'"}'
    fake.drip_seconds = 0.2  # each byte well within a per-read timeout; the whole answer takes 45 s
    with running(fake):
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=1)
        started = time.monotonic()
        with pytest.raises(ProviderError, match=r"did not answer .* within 1 s"):
            if call == "search":
                provider.search("US", "212", 5)
            elif call == "order":
                provider.order("12125550100")
            else:
                provider.release("12125550100")
        took = time.monotonic() - started
    assert took < 2.5, took


def test_an_offer_of_another_country_or_area_code_is_not_bought(world) -> None:
    fake = FakeProvider(["+12125550100"])
    fake.search_answer = {"numbers": [{"number": "+442079460958", "monthly_cost": "0.50"}]}
    with running(fake):
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=5)
        with pytest.raises(DidRefused, match=r"offered only numbers of other countries.*\+442079460958"):
            _order(world, provider)
        fake.search_answer = {"numbers": [{"number": "+13105550100", "monthly_cost": "0.50"}]}  # US, but 310
        with pytest.raises(DidRefused, match="offered only numbers of other"):
            _order(world, provider)
    assert fake.orders == [] and not Did.objects.exists()


def test_a_sold_number_of_another_area_code_is_released(world) -> None:
    fake = FakeProvider(["+12125550100"])
    fake.sell_instead = "+13105550100"
    with running(fake):
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=5)
        with pytest.raises(DidRefused):
            _order(world, provider)
    assert "+13105550100" in fake.releases and not Did.objects.exists()


def test_a_number_that_does_not_fit_the_pattern_is_not_bought(world) -> None:
    with running(FakeProvider(["+12125550100", "+12125557777"])) as fake:
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=5)
        result = order_did(
            world["account"], world["plan"], country="US", area_code="212", pattern="*7777", provider=provider, on=D
        )
    assert result.did.number == "12125557777" and fake.orders == ["+12125557777"]
