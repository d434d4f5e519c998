"""The tax tables in the database (issue 15, "Taxes"): the built-in engine reads them in a fixed number
of queries, exemptions and scopes apply, bad rows are refused by the back office and ``tarifa tax add``
with field, value and rule, and another engine plugs in through TARIFA_TAX_ENGINE."""

from __future__ import annotations

import html
import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from typer.testing import CliRunner

from tarifa import config
from tarifa.billing.models import TaxExemption, TaxRate
from tarifa.billing.taxes import TableTaxEngine, tax_engine
from tarifa.core.taxes import TaxableLine, TaxCustomer, check_tax_line
from tarifa.customers.models import Customer

pytestmark = pytest.mark.django_db
D = Decimal
DAY = date(2026, 6, 30)
LINES = [
    TaxableLine("c1", "calls", "Calls to UK", D("40.00"), "US", "CA"),
    TaxableLine("c2", "calls", "Calls to UK", D("10.00"), "GB"),
    TaxableLine("s1", "services", "Monthly fee", D("50.00")),
]


def _customer(operator, n: int, flag: str = "VAT", parent=None, **kw):  # type: ignore[no-untyped-def]
    return Customer.objects.create(
        parent=parent or operator,
        name=f"Tax {n}",
        company=f"Tax {n} Ltd",
        web_username=f"tax{n}",
        tariff=operator.tariff,
        email=f"tax{n}@x.example",
        phone="+12015550123",
        country="US",
        tax_flag=flag,
        **kw,
    )


def _who(c: Customer) -> TaxCustomer:
    return TaxCustomer(c.pk, "US", "CA", c.currency, False, 2)


def test_the_builtin_engine_applies_the_table_in_order_with_compounding_origin_and_fixed_taxes(operator) -> None:
    a = _customer(operator, 1)
    TaxRate.objects.create(name="GST", flag="VAT", rate=D(5), order=1)
    TaxRate.objects.create(name="QST", flag="VAT", rate=D("9.975"), order=2, compound=True)
    TaxRate.objects.create(name="CA 911", flag="VAT", rate=D(2), order=3, origin_country="US", origin_region="CA")
    TaxRate.objects.create(name="Line fee", flag="VAT", kind="fixed", rate=D("1.25"), currency="USD", order=4)
    TaxRate.objects.create(name="Sales tax", flag="TAX", rate=D(8))  # another flag: not for this customer
    lines = tax_engine([a.pk]).taxes(_who(a), LINES, DAY)
    assert [(t.name, t.base, t.amount) for t in lines] == [
        ("GST", D(100), D("5.00")),
        ("QST", D(105), D("10.47")),
        ("CA 911", D(40), D("0.80")),
        ("Line fee", D(100), D("1.25")),
    ]
    assert all(check_tax_line(t) == [] for t in lines)


def test_flag_none_exemptions_scope_and_the_customers_own_rate(operator, tariff) -> None:
    reseller = Customer.objects.create(
        kind="reseller",
        parent=operator,
        name="Res",
        company="Reseller Ltd",
        web_username="res1",
        tariff=tariff,
        email="r@x.example",
        phone="+12015550123",
        country="US",
    )
    plain, exempt, untaxed = _customer(operator, 2), _customer(operator, 3), _customer(operator, 4, flag="NONE")
    under = _customer(operator, 5, parent=reseller, tax_rate=D(1))
    TaxExemption.objects.create(customer=exempt, reference="CERT-42", valid_from=date(2026, 1, 1))
    TaxRate.objects.create(name="VAT", flag="VAT", rate=D(20))
    TaxRate.objects.create(name="Reseller levy", flag="VAT", rate=D(1), order=5, applies_to=reseller)
    engine = tax_engine([plain.pk, exempt.pk, untaxed.pk, under.pk])
    assert [t.name for t in engine.taxes(_who(plain), LINES, DAY)] == ["VAT"]
    assert engine.taxes(_who(exempt), LINES, DAY) == []
    assert isinstance(engine, TableTaxEngine) and engine.exemption_reference(exempt.pk, DAY) == "CERT-42"
    assert engine.exemption_reference(plain.pk, DAY) is None
    assert [t.name for t in engine.taxes(_who(exempt), LINES, date(2025, 12, 31))] == ["VAT"]  # not yet exempt
    assert engine.taxes(_who(untaxed), LINES, DAY) == []
    assert [(t.name, t.amount) for t in engine.taxes(_who(under), LINES, DAY)] == [
        ("VAT", D("1.00")),  # the customer's own "Tax rate (%)", named by its flag, first
        ("VAT", D("20.00")),
        ("Reseller levy", D("1.00")),
    ]


def test_the_engine_reads_the_tables_in_three_queries_whatever_the_number_of_customers(
    operator, django_assert_num_queries
) -> None:
    many = [_customer(operator, 10 + n) for n in range(12)]
    TaxExemption.objects.create(customer=many[0], reference="X-1")
    TaxRate.objects.create(name="VAT", flag="VAT", rate=D(20))
    with django_assert_num_queries(3):
        engine = TableTaxEngine.load([c.pk for c in many])
    with django_assert_num_queries(0):
        taxed = [engine.taxes(_who(c), LINES, DAY) for c in many]
    assert taxed[0] == [] and all(len(t) == 1 for t in taxed[1:])


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    return client


def _form(**kw: object) -> dict[str, object]:
    data: dict[str, object] = {"name": "VAT", "flag": "VAT", "kind": "percent", "rate": "20", "order": "0"}
    data.update(kw)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_form(rate="-5"), "Rate (%) -5 is refused: must not be negative"),
        (_form(rate="abc"), "Rate (% or amount) 'abc' is refused: must be a number"),
        (_form(rate="150"), "Rate (%) 150 is refused: must be at most 100"),
        (_form(kind="fixed", rate="2"), "Currency (empty) is refused: a fixed tax needs its currency"),
        (_form(compound="on", origin_country="US"), "Compound 'on' is refused: an origin-based tax cannot compound"),
        (_form(origin_country="U1"), "Origin country 'U1' is refused: must be an ISO 3166 alpha-2 code"),
    ],
)
def test_the_back_office_refuses_bad_tax_rows_by_field_value_and_rule(staff_client, data, message) -> None:  # type: ignore[no-untyped-def]
    response = staff_client.post(reverse("admin:billing_taxrate_add"), data)
    assert response.status_code == 200
    errors = re.findall(r'class="[^"]*errorlist[^"]*"[^>]*>(.*?)</', html.unescape(response.content.decode()), re.S)
    assert message in html.unescape(response.content.decode()), errors
    assert not TaxRate.objects.exists()


def test_the_back_office_refuses_a_compound_loop_and_a_fixed_tax_in_another_currency(staff_client, operator) -> None:
    euro_customer = _customer(operator, 6, currency="EUR")
    TaxRate.objects.create(name="GST", flag="VAT", rate=D(5), order=1)
    response = staff_client.post(reverse("admin:billing_taxrate_add"), _form(name="QST", order="1", compound="on"))
    assert "Order 1 is refused: tax 'GST' has the same order" in html.unescape(response.content.decode())
    response = staff_client.post(
        reverse("admin:billing_taxrate_add"),
        _form(name="Fee", kind="fixed", rate="1", currency="USD", applies_to=euro_customer.pk),
    )
    assert "Currency 'USD' is refused: must be the currency of the customers it applies to (EUR)" in (
        html.unescape(response.content.decode())
    )
    assert TaxRate.objects.count() == 1
    response = staff_client.post(reverse("admin:billing_taxrate_add"), _form(name="QST", order="2", compound="on"))
    assert response.status_code == 302 and TaxRate.objects.count() == 2


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from tarifa import cli

    if not any(group.name == "tax" for group in cli.app.registered_groups):
        cli._register_commands()
    return CliRunner().invoke(cli.app, list(args))


def test_cli_tax_add_and_list_and_its_refusals(operator) -> None:
    ok = _cli("tax", "add", "GST", "--rate", "5", "--order", "1")
    assert ok.exit_code == 0, ok.output
    assert "'GST' added: percent 5" in ok.output
    for args, message in [
        (("--rate", "5,5"), "Rate '5,5' is refused: must be a decimal number in plain notation"),
        (("--rate", "-1"), "Rate (%) -1 is refused: must not be negative"),
        (("--rate", "3", "--order", "1", "--compound"), "Order 1 is refused: tax 'GST' has the same order"),
        (("--rate", "3", "--kind", "fixed", "--currency", "usd"), "Currency"),
        (("--rate", "3", "--from", "2026-13-01"), "--from '2026-13-01' is refused: is not a day of the calendar"),
    ]:
        refused = _cli("tax", "add", "Other", *args)
        assert refused.exit_code == 2 and message in refused.output, (args, refused.output)
    assert TaxRate.objects.count() == 1
    listed = _cli("tax", "list")
    assert listed.exit_code == 0 and "GST" in listed.output


def test_a_duplicate_tax_is_refused_by_the_cli_and_the_back_office(staff_client, operator) -> None:
    first = _cli("tax", "add", "VAT 20%", "--rate", "20", "--flag", "VAT")
    assert first.exit_code == 0, first.output
    pk = TaxRate.objects.get().pk
    again = _cli("tax", "add", "VAT 20%", "--rate", "20", "--flag", "VAT")
    assert again.exit_code == 2, again.output
    assert f"Name 'VAT 20%' is refused: tax {pk} 'VAT 20%' has the same name and applies to the same" in again.output
    response = staff_client.post(reverse("admin:billing_taxrate_add"), _form(name="VAT 20%", rate="20"))
    assert f"tax {pk} 'VAT 20%' has the same name" in html.unescape(response.content.decode())
    assert TaxRate.objects.count() == 1
    # a successor from the day the first row ends is accepted
    TaxRate.objects.filter(pk=pk).update(valid_to=date(2027, 1, 1))
    successor = _cli("tax", "add", "VAT 20%", "--rate", "21", "--flag", "VAT", "--from", "2027-01-01")
    assert successor.exit_code == 0, successor.output


def test_an_external_engine_is_configured_checked_at_start_up_and_used(monkeypatch, operator) -> None:
    a = _customer(operator, 7)
    monkeypatch.setenv("TARIFA_TAX_ENGINE", "tests.example_tax_engine:FlatStateEngine")
    engine = tax_engine([a.pk])
    assert type(engine).__name__ == "FlatStateEngine"
    [tax] = engine.taxes(_who(a), LINES, DAY)
    assert (tax.name, tax.base, tax.amount) == ("State sales tax", D(100), D("7.25"))
    assert check_tax_line(tax) == []
    for spec, rule in [
        ("tests.example_tax_engine:NotAnEngine", "the class NotAnEngine has no taxes(customer, lines, on) method"),
        ("tests.example_tax_engine:Missing", "the module tests.example_tax_engine has no class Missing"),
        ("tests.no_such_module:Engine", "the module tests.no_such_module cannot be imported (ModuleNotFoundError"),
    ]:
        monkeypatch.setenv("TARIFA_TAX_ENGINE", spec)
        with pytest.raises(config.ConfigError, match=re.escape(f"TARIFA_TAX_ENGINE {spec!r} is refused: {rule}")):
            config.check_all()
