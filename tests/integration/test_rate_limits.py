"""One rule set for a rate: the deck import, the model's ``full_clean`` and the back-office form
refuse the same values (issue 11 item 10, issue 13), because all read ``tarifa.core.rate_rules``.

Each case puts one value into one column of an otherwise valid rate and asks every door.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.forms import modelform_factory

from tarifa.core.rate_rules import AMOUNTS, WHOLES
from tarifa.rating.decks import DeckRejected, import_file
from tarifa.rating.models import Rate, Tariff
from tarifa.routing.models import DestinationRate, DestinationSet, Vendor

pytestmark = pytest.mark.django_db

BASE = {"prefix": "44", "destination": "UK", "price_1": "0.01"}
CASES = [
    ("price_1", "0"),
    ("price_1", "0.000001"),
    ("price_1", "9223372036854.775807"),
    ("price_1", "9223372036854.775808"),
    ("price_1", "99999999999999"),
    ("price_1", "-0.01"),
    ("price_1", "0.0000001"),
    ("price_1", "abc"),
    ("price_n", "99999999999999"),
    ("connect_fee", "99999999999999"),
    ("min_charge", "1e30"),
    ("connect_fee", "-1"),
    ("min_charge", "12.345678"),
    ("post_call_surcharge", "0"),
    ("post_call_surcharge", "12.5"),
    ("post_call_surcharge", "10000"),
    ("post_call_surcharge", "10000.0001"),
    ("post_call_surcharge", "20000"),
    ("post_call_surcharge", "-1"),
    ("post_call_surcharge", "0.00001"),
    ("interval_1", "1"),
    ("interval_1", "0"),
    ("interval_1", "86400"),
    ("interval_1", "86401"),
    ("interval_n", "-5"),
    ("interval_n", "99999999999999999999"),
    ("free_seconds", "0"),
    ("free_seconds", "-1"),
    ("grace_period", "86401"),
    ("grace_period", "1.5"),
    ("prefix", "4a"),
    ("prefix", "1234567890123456"),
    ("prefix", "123456789012345"),
    ("destination", "x" * 100),
    ("destination", "x" * 101),
    ("destination", "U\x00K"),
    ("destination", "U\x1bK"),
    ("period", "mon-fri 08:00-18:00"),
    ("period", "someday"),
    ("period", "mon\x01"),
]


def _deck_verdict(tariff: Tariff, name: str, value: str) -> str | None:
    values = {**BASE, name: value}
    header = ",".join(values)
    data = (header + "\n" + ",".join(values.values()) + "\n").encode()
    try:
        import_file(tariff, data, "one.csv")
    except DeckRejected as exc:
        rules = [e.rule for e in exc.errors if e.field == name]
        assert len(rules) == len(exc.errors) == 1, exc.errors
        return rules[0]
    return None


def _model_verdict(model: type, owner: dict, name: str, value: str) -> list[str]:
    values = {**BASE, "price_n": BASE["price_1"], name: value}
    rate = model(**owner, **values)
    try:
        rate.full_clean()
    except ValidationError as exc:
        return exc.message_dict.get(name, []) or [f"other field: {exc.message_dict}"]
    return []


@pytest.fixture
def owners(db):  # type: ignore[no-untyped-def]
    deck_door = Tariff.objects.create(name="Limits by deck")
    tariff = Tariff.objects.create(name="Limits")
    dset = DestinationSet.objects.create(name="Limits A-Z", vendor=Vendor.objects.create(name="Limits carrier"))
    return deck_door, tariff, dset


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v[:20]!r}" for n, v in CASES])
def test_every_door_gives_the_same_verdict(owners, name: str, value: str) -> None:
    deck_door, tariff, dset = owners
    deck_rule = _deck_verdict(deck_door, name, value)
    for model, owner in ((Rate, {"tariff": tariff}), (DestinationRate, {"destination_set": dset})):
        messages = _model_verdict(model, owner, name, value)
        if deck_rule is None:
            assert messages == [], (model.__name__, messages)
        else:
            # The same words: "<Label> <value> is refused: <the deck's rule>".
            assert any(f"is refused: {deck_rule}" in m for m in messages), (deck_rule, messages)
    # The back-office form is built from the model's fields: it refuses the same values.
    form_class = modelform_factory(Rate, fields=["tariff", *BASE, "price_n", name])
    data = {
        "tariff": tariff.pk,
        **BASE,
        "price_n": BASE["price_1"],
        "interval_1": 60,
        "interval_n": 60,
        "free_seconds": 0,
        "grace_period": 0,
        "connect_fee": 0,
        "post_call_surcharge": 0,
        "min_charge": 0,
        "effective_from": "1970-01-01 00:00:00",
        name: value,
    }
    form = form_class(data)
    assert form.is_valid() is (deck_rule is None), (deck_rule, form.errors)
    if deck_rule is not None:
        assert list(form.errors) == [name]
        if name in (*AMOUNTS, *WHOLES) and not deck_rule.startswith(("must be a decimal", "must be a whole")):
            # A numeric limit: the form says it in the same words as the deck. (Text fields keep
            # Django's form-level checks, e.g. "Null characters are not allowed.", which run first.)
            assert any(f"is refused: {deck_rule}" in m for m in form.errors[name]), (deck_rule, form.errors)


def test_a_price_beyond_the_column_never_reaches_the_database(owners) -> None:
    """The money field itself refuses what its column cannot hold, whatever its validators say."""
    from tarifa.billing.models import Transaction

    field = Transaction._meta.get_field("amount")
    with pytest.raises(ValidationError) as exc:
        field.clean(Decimal("99999999999999"), None)
    assert exc.value.messages == [
        f"{str(field.verbose_name).capitalize()} 99999999999999 is refused: "
        "must be between -9223372036854.775807 and 9223372036854.775807"
    ]
    field.clean(Decimal("-9223372036854.775807"), None)
    with pytest.raises(ValueError, match=r"must be between -9223372036854\.775807 and 9223372036854\.775807"):
        field.get_prep_value(Decimal("9223372036854.775808"))


def test_a_money_form_field_refuses_with_label_value_and_limit_on_any_form(db) -> None:
    """A plain form built from a money field (a payment form, say) checks what the column can hold."""
    from tarifa.billing.models import Transaction

    field = Transaction._meta.get_field("amount").formfield()
    for value, rule in (
        ("99999999999999", "must be between -9223372036854.775807 and 9223372036854.775807"),
        ("0.0000001", "at most 6 decimal places"),
    ):
        with pytest.raises(ValidationError) as exc:
            field.clean(value)
        assert exc.value.messages == [f"Amount {Decimal(value)} is refused: {rule}"]
    assert field.clean("-12.5") == Decimal("-12.5")


def test_a_bulk_write_beyond_the_column_names_the_field_not_an_overflow(owners) -> None:
    from django.utils import timezone

    from tarifa.db import bulk_insert

    _deck_door, tariff, _dset = owners
    now = timezone.now()
    with pytest.raises(
        ValueError, match=r"Price first interval \(per minute\) 99999999999999 is refused: must be between"
    ):
        bulk_insert(
            Rate,
            ["tariff", "prefix", "price_1", "created_at", "updated_at", "effective_from"],
            [[tariff.pk, "44", Decimal("99999999999999"), now, now, now]],
        )
