"""One vocabulary: every stored status or kind the core names is the core's enum, and the Django
choices of its column are built from that enum (same values, same order, a label for each)."""

from __future__ import annotations

from enum import StrEnum

import pytest

from tarifa.core import cdr, invoices, numbering, payments, rating, routes
from tarifa.core.authorization import views
from tarifa.vocabulary import Labels

# (model path, field name, the core enum the column stores)
COLUMNS = [
    ("cdrs.Cdr", "rating_status", rating.RatingStatus),
    ("cdrs.Cdr", "direction", cdr.Direction),
    ("cdrs.Cdr", "disposition", cdr.Disposition),
    ("rating.Tariff", "rounding", rating.Rounding),
    ("routing.RoutingGroup", "policy", routes.RoutingPolicy),
    ("routing.RouteOffer", "choice", views.RouteChoice),
    ("customers.Account", "domestic_route", views.RouteChoice),
    ("customers.Account", "international_route", views.RouteChoice),
    ("customers.Account", "tollfree_route", views.RouteChoice),
    ("customers.Account", "dialing_mode", numbering.DialingMode),
    ("billing.Transaction", "kind", payments.TransactionKind),
    ("billing.Invoice", "status", invoices.InvoiceStatus),
]


@pytest.mark.parametrize(("model", "field", "enum"), COLUMNS, ids=[f"{m}.{f}" for m, f, _ in COLUMNS])
def test_column_choices_are_the_core_enum(model: str, field: str, enum: type[StrEnum]) -> None:
    from django.apps import apps

    choices = apps.get_model(model)._meta.get_field(field).choices
    assert [value for value, _ in choices] == [m.value for m in enum]
    assert all(label for _, label in choices)


def test_the_apps_choices_modules_hand_out_the_core_enums() -> None:
    """The adapters' names are the same objects as the core's: no second enum to compare with."""
    from tarifa.billing import choices as billing
    from tarifa.cdrs import choices as cdrs
    from tarifa.customers import choices as customers
    from tarifa.rating import choices as rating_choices
    from tarifa.routing import choices as routing

    assert cdrs.RatingStatus is rating.RatingStatus
    assert cdrs.Direction is cdr.Direction
    assert cdrs.Disposition is cdr.Disposition
    assert rating_choices.Rounding is rating.Rounding
    assert routing.RoutingPolicy is routes.RoutingPolicy
    assert customers.RouteChoice is views.RouteChoice
    assert customers.DialingMode is numbering.DialingMode
    assert billing.TransactionKind is payments.TransactionKind
    assert billing.InvoiceStatus is invoices.InvoiceStatus


def test_core_constants_are_the_enum_members() -> None:
    assert tuple(views.RouteChoice) == (views.VALUE, views.PREMIUM)
    assert all(isinstance(c, views.RouteChoice) for c in (views.VALUE, views.PREMIUM))
    assert tuple(cdr.Disposition) == cdr.DISPOSITIONS and tuple(cdr.Direction) == cdr.DIRECTIONS
    assert payments.KINDS == (
        payments.TransactionKind.PAYMENT,
        payments.TransactionKind.CREDIT,
        payments.TransactionKind.REFUND,
        payments.TransactionKind.ADJUSTMENT,
    )
    assert numbering.NANP is numbering.DialingMode.NANP


class _Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


def test_labels_refuse_a_member_without_label() -> None:
    with pytest.raises(ValueError, match=r"missing for \['BLUE'\]"):
        Labels(_Colour, {_Colour.RED: "Red"})


def test_labels_give_choices_in_enum_order_and_label_by_stored_value() -> None:
    labels = Labels(_Colour, {_Colour.BLUE: "Blue", _Colour.RED: "Red"})
    assert labels.choices == [("red", "Red"), ("blue", "Blue")]
    assert labels.label("blue") == "Blue"
    with pytest.raises(ValueError):
        labels.label("green")


def test_routing_policy_refusal_lists_the_enum() -> None:
    with pytest.raises(ValueError, match="least_cost, priority, weighted"):
        routes.order([], "random", "call-1")
