"""The customer portal through Django's test client: closed by default, one tenant's data only,
the back office's validation, keyset pages, exports, password reset by e-mail (real SMTP)."""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from tarifa.calls import cache
from tarifa.calls.models import Reservation
from tarifa.cdrs.models import Cdr
from tarifa.customers.forms import AccountForm, set_web_access
from tarifa.customers.models import Account, Customer
from tarifa.portal import history

pytestmark = pytest.mark.django_db

PASSWORD = "Portal-pass1"
NOW = datetime.now(UTC).replace(microsecond=0)


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.content.decode())


def _errors(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [re.sub(r"<[^>]+>", "", e).strip() for e in re.findall(r"<li>(.*?)</li>", _errors_html(response), re.S)]


def _errors_html(response) -> str:  # type: ignore[no-untyped-def]
    return "".join(re.findall(r'<ul class="errors"[^>]*>(.*?)</ul>', _text(response), re.S))


def _cdr(customer: Customer, account: Account, n: int, **extra) -> Cdr:  # type: ignore[no-untyped-def]
    fields = {
        "switch": "sw",
        "call_id": f"c-{customer.pk}-{n}",
        "customer": customer,
        "account": account,
        "callee": "011442079460958",
        "caller": "12015550123",
        "start_time": NOW - timedelta(minutes=n),
        "duration": 60,
        "price": Decimal("0.0200"),
        "rating_status": "rated",
        "destination": "United Kingdom",
    }
    fields.update(extra)
    return Cdr.objects.create(**fields)


@pytest.fixture
def portal(net, operator):  # type: ignore[no-untyped-def]
    customer = net["customer"]
    set_web_access(customer, PASSWORD)
    Account.objects.filter(pk=net["alice"].pk).update(sip_password="Alice-pass1")  # the model requires one
    other = Customer.objects.create(
        parent=operator,
        name="O",
        company="Other Ltd",
        web_username="other",
        tariff=net["tariff"],
        email="o@o.example",
        phone="+12015550124",
        country="US",
    )
    set_web_access(other, PASSWORD)
    theirs = Account.objects.create(customer=other, name="theirs", sip_password="Their-pass1")
    return {
        **net,
        "other": other,
        "theirs": theirs,
        "their_cdr": _cdr(other, theirs, 1, callee="0114930901820"),
        "my_cdr": _cdr(customer, net["alice"], 2),
    }


@pytest.fixture
def client_in(portal) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    response = client.post("/portal/login/", {"username": "cust", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/portal/"
    return client


PAGES = ["/portal/", "/portal/calls/", "/portal/accounts/", "/portal/profile/", "/portal/why/"]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_needs_a_customer_log_in(portal, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/portal/login/?next=")


def test_pages_show_the_customers_own_data(client_in, portal) -> None:
    for url in PAGES:
        response = client_in.get(url)
        assert response.status_code == 200, url
        assert "Other Ltd" not in _text(response) and "theirs" not in _text(response)
    calls = _text(client_in.get("/portal/calls/"))
    assert "011442079460958" in calls and "0114930901820" not in calls


def test_another_customers_ids_are_404(client_in, portal) -> None:
    theirs, cdr = portal["theirs"], portal["their_cdr"]
    for url in (
        f"/portal/accounts/{theirs.pk}/",
        f"/portal/accounts/{theirs.pk}/restrictions/",
        f"/portal/calls/{cdr.pk}/",
        f"/portal/why/{cdr.pk}/",
        f"/portal/calls/?account={theirs.pk}",
        f"/portal/calls/export.csv?account={theirs.pk}",
        "/portal/accounts/abc/",
    ):
        assert client_in.get(url).status_code == 404, url
    before = Account.objects.get(pk=theirs.pk).allow_international
    assert (
        client_in.post(f"/portal/accounts/{theirs.pk}/restrictions/", {"allow_international": "on"}).status_code == 404
    )
    assert Account.objects.get(pk=theirs.pk).allow_international == before
    # the "try a number" form with another's account: refused by name, nothing simulated for it
    response = client_in.post("/portal/why/", {"account": theirs.pk, "number": "0114930901820"})
    assert response.status_code == 400
    assert _errors(response) == [f"Account {theirs.pk} is refused: must be one of your accounts"]


def test_staff_cannot_use_the_portal_and_customers_cannot_use_the_back_office(portal) -> None:
    get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1!")
    staff = Client()
    response = staff.post("/portal/login/", {"username": "boss", "password": "Boss-pass1!"})
    assert response.status_code == 200 and "do not match a customer's portal log-in" in _text(response)
    assert staff.get("/portal/").status_code == 302
    customer = Client()
    customer.post("/portal/login/", {"username": "cust", "password": PASSWORD})
    assert customer.get("/portal/").status_code == 200
    admin = customer.get("/admin/")
    assert admin.status_code == 302 and admin["Location"].startswith("/admin/login/")
    assert customer.post("/admin/login/", {"username": "cust", "password": PASSWORD}).status_code == 200
    assert customer.get("/admin/customers/customer/").status_code == 302


def test_lock_out_after_repeated_failures_with_the_time_it_ends(portal) -> None:
    client = Client()
    for _ in range(5):
        response = client.post("/portal/login/", {"username": "cust", "password": "wrong"})
        assert response.status_code == 200
    assert "Too many failed log-ins for user name 'cust'" in _text(response)
    # locked: even the right password is refused until the announced time
    response = client.post("/portal/login/", {"username": "cust", "password": PASSWORD})
    assert "log-in is locked until" in _text(response) and client.get("/portal/").status_code == 302


def test_portal_failures_for_a_staff_name_do_not_lock_the_back_office(portal) -> None:
    """Attack finding 2: the portal counts its failures per user name apart from the back office's."""
    from tarifa.throttle.models import LoginFailure

    get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1!")
    attacker = Client()
    for n in range(6):
        attacker.post("/portal/login/", {"username": "boss", "password": f"guess{n}"}, REMOTE_ADDR="203.0.113.7")
    assert LoginFailure.objects.filter(scope="user", key="portal:boss").count() == 5
    assert not LoginFailure.objects.filter(scope="user", key="admin:boss").exists()
    staff = Client()
    response = staff.post("/admin/login/", {"username": "boss", "password": "Boss-pass1!"}, REMOTE_ADDR="198.51.100.8")
    assert response.status_code == 302 and staff.get("/admin/").status_code == 200
    # and the other way round: the back office's failures for a customer do not lock the portal
    for n in range(5):
        attacker.post("/admin/login/", {"username": "cust", "password": f"guess{n}"}, REMOTE_ADDR="203.0.113.7")
    customer = Client()
    customer.post("/portal/login/", {"username": "cust", "password": PASSWORD}, REMOTE_ADDR="198.51.100.9")
    assert customer.get("/portal/").status_code == 200


def test_far_dates_in_the_call_history_are_refused_by_name_not_a_500(client_in) -> None:
    """Attack finding 6: ``date_to=9999-12-31`` overflowed when a day was added (HTTP 500)."""
    dates = {"date_from": "0001-01-01", "date_to": "9999-12-31"}
    page = client_in.get("/portal/calls/", dates)
    assert page.status_code == 200
    assert "To '9999-12-31' is refused: must be between 2000-01-01 and 2999-12-31" in _errors(page)
    assert "From '0001-01-01' is refused: must be between 2000-01-01 and 2999-12-31" in _errors(page)
    for fmt in ("xlsx", "csv"):
        export = client_in.get(f"/portal/calls/export.{fmt}", dates)
        assert export.status_code == 400
        assert "To '9999-12-31' is refused: must be between 2000-01-01 and 2999-12-31" in _errors(export)


def test_csrf_on_every_form(portal) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/portal/login/", {"username": "cust", "password": PASSWORD}).status_code == 403
    assert client.post("/portal/password-reset/", {"email": "cust"}).status_code == 403


def test_a_refused_setting_names_the_rule_keeps_the_value_and_changes_nothing(client_in, portal) -> None:
    alice = portal["alice"]
    data = {"allow_international": "on", "max_call_time_domestic": "999999", "international_rate_cap": "0.5"}
    response = client_in.post(f"/portal/accounts/{alice.pk}/restrictions/", data)
    assert response.status_code == 400
    message = "Max call time for domestic calls 999999 is refused: must be between 1 and 86400 seconds"
    assert _errors(response) == [message]
    assert 'value="999999"' in _text(response) and 'value="0.5"' in _text(response)
    stored = Account.objects.get(pk=alice.pk)
    assert stored.max_call_time_domestic is None and stored.international_rate_cap is None
    # the back office's form refuses the same value with the same words (one validation)
    form = AccountForm(instance=stored, data={**_admin_data(stored), "max_call_time_domestic": "999999"})
    assert not form.is_valid() and form.errors["max_call_time_domestic"] == [message]


def _admin_data(account: Account) -> dict[str, object]:
    form = AccountForm(instance=account)
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else value
    data["sip_password"] = ""
    return data


def test_settings_saved_and_model_rules_apply(client_in, portal) -> None:
    alice = portal["alice"]
    response = client_in.post(
        f"/portal/accounts/{alice.pk}/restrictions/",
        {"max_call_time_international": "600", "allowed_countries": ["GB", "FR"]},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.allow_international, alice.max_call_time_international) == (False, 600)
    assert alice.allowed_countries == ["FR", "GB"]
    # a rule across two fields (seed 001: RTP time-out at most the hold time-out)
    response = client_in.post(
        f"/portal/accounts/{alice.pk}/advanced/",
        {"nat": "on", "dtmf_mode": "auto", "max_expiry": "3600", "rtp_timeout": "700", "rtp_hold_timeout": "600"},
    )
    assert response.status_code == 400
    assert "RTP time-out 700 is refused: must be equal to or lower than the RTP hold time-out (600)" in _errors(
        response
    )
    # the SIP password: the seed's rule, masked; left empty, the stored one is kept
    stored = Account.objects.get(pk=alice.pk).sip_password
    response = client_in.post(f"/portal/accounts/{alice.pk}/security/", {"sip_password": "short"})
    assert (
        response.status_code == 400 and "*****" in " ".join(_errors(response)) and "short" not in _errors_html(response)
    )
    assert (
        client_in.post(f"/portal/accounts/{alice.pk}/security/", {"ip_restriction": "192.0.2.0/24"}).status_code == 302
    )
    alice.refresh_from_db()
    assert alice.sip_password == stored and alice.ip_restriction == ["192.0.2.0/24"]
    assert client_in.get(f"/portal/accounts/{alice.pk}/nonsense/").status_code == 404


def test_keyset_pages_walk_every_call_once_in_order(client_in, portal) -> None:
    customer, alice = portal["customer"], portal["alice"]
    tie = NOW - timedelta(hours=1)
    made = [_cdr(customer, alice, 100 + n, start_time=tie if n % 3 else tie - timedelta(seconds=n)) for n in range(120)]
    rows = history.filtered(customer, {})
    seen: list[int] = []
    after = None
    while True:
        page = history.page(rows, after, size=25)
        seen += [r.pk for r in page.rows]
        if page.next_cursor is None:
            break
        after = history.parse_cursor(page.next_cursor)
    expected = list(Cdr.objects.filter(customer=customer).order_by("-start_time", "-pk").values_list("pk", flat=True))
    assert seen == expected and len(seen) == len(made) + 1
    # through the page: the "older calls" link carries the cursor
    first = _text(client_in.get("/portal/calls/"))
    link = re.search(r'rel="next" href="\?([^"]+)"', first)
    assert link is not None
    second = client_in.get("/portal/calls/?" + link.group(1))
    assert second.status_code == 200 and "First page" in _text(second)
    bad = client_in.get("/portal/calls/?after=nonsense")
    assert "Page 'nonsense' is refused: is not a page of this list" in _text(bad)


def test_filters_and_totals(client_in, portal) -> None:
    customer, alice = portal["customer"], portal["alice"]
    _cdr(customer, alice, 3, callee="0113314268530", destination="France", disposition="failed", price=Decimal(0))
    response = client_in.get("/portal/calls/", {"destination": "fran"})
    text = _text(response)
    assert "0113314268530" in text and "011442079460958" not in text
    assert re.search(r"<strong>1</strong> call,", text)
    assert "0113314268530" in _text(client_in.get("/portal/calls/", {"status": "failed"}))
    assert "0113314268530" not in _text(client_in.get("/portal/calls/", {"number": "4420"}))
    response = client_in.get("/portal/calls/", {"date_from": "2026-02-10", "date_to": "2026-02-01"})
    assert "To '2026-02-01' is refused: must be on or after From (2026-02-10)" in _text(response)
    response = client_in.get("/portal/calls/", {"date_from": "2026-13-01"})
    assert "From '2026-13-01' is refused: must be a date such as 2026-01-31" in _text(response)


def test_exports_guard_formula_cells(client_in, portal) -> None:
    _cdr(portal["customer"], portal["alice"], 4, caller='=HYPERLINK("http://x")')
    csv = client_in.get("/portal/calls/export.csv")
    assert csv.status_code == 200 and csv["Content-Disposition"].startswith('attachment; filename="calls-')
    body = csv.content.decode()
    assert "'=HYPERLINK" in body and "0114930901820" not in body
    xlsx = client_in.get("/portal/calls/export.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    cells = [c for row in sheet.iter_rows() for c in row if str(c.value).startswith("=HYPERLINK")]
    assert cells and all(c.data_type == "s" for c in cells)
    assert client_in.get("/portal/calls/export.pdf").status_code == 404


def test_home_numbers_and_the_low_balance_warning(client_in, portal) -> None:
    customer, alice = portal["customer"], portal["alice"]
    Reservation.objects.create(
        switch="sw", call_id="live-1", customer=customer, account=alice, amount=Decimal("1.5"),
        max_duration=600, created_at=NOW, expires_at=NOW + timedelta(hours=1),
    )  # fmt: skip
    text = _text(client_in.get("/portal/"))
    assert re.search(r'id="balance">10\.00 ', text)
    assert re.search(r'id="available">8\.50 ', text)  # prepaid: balance less calls in progress
    assert re.search(r'id="in-progress">1<', text) and "<svg" in text and "low-balance" not in text
    Account.objects.filter(pk=alice.pk).update(balance_threshold=Decimal("20"))
    assert 'id="low-balance"' in _text(client_in.get("/portal/"))


def test_profile_refuses_with_the_fields_message_and_saves(client_in, portal) -> None:
    customer = portal["customer"]
    data = {"form": "profile", "name": "New Name", "company": "C Ltd", "email": "not-an-email", "address": "1 Road",
            "phone": "+12015550123", "country": "US", "pin": ""}  # fmt: skip
    response = client_in.post("/portal/profile/", data)
    assert response.status_code == 400 and any(
        e.startswith("Email address 'not-an-email' is refused") for e in _errors(response)
    )
    assert 'value="New Name"' in _text(response)
    assert Customer.objects.get(pk=customer.pk).name == "C"
    response = client_in.post("/portal/profile/", {**data, "email": "new@c.example"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "New Name" and customer.user.email == "new@c.example"


def test_profile_refuses_line_breaks_and_control_characters(client_in, portal) -> None:
    """Attack finding 5: CR/LF and terminal escapes in company or name reached the operator's shell."""
    customer = portal["customer"]
    data = {"form": "profile", "name": "New Name", "company": "C Ltd", "email": "new@c.example", "address": "1 Road",
            "phone": "+12015550123", "country": "US", "pin": ""}  # fmt: skip
    for field, value in (("company", "Acme\r\nBcc: victim@evil.example"), ("name", "Acme\x1b]0;pwned\x07x")):
        response = client_in.post("/portal/profile/", {**data, field: value})
        assert response.status_code == 400
        rule = f"{field.capitalize()} {value!r} is refused: may not contain line breaks or control characters"
        assert rule in _errors(response)
    stored = Customer.objects.get(pk=customer.pk)
    assert "\r" not in stored.company and "\x1b" not in stored.name
    # the model's own validation: every door (back office, API, imports) refuses it too
    stored.company = "A\tB"
    with pytest.raises(ValidationError) as refused:
        stored.full_clean()
    assert "Company 'A\\tB' is refused: may not contain line breaks or control characters" in refused.value.messages


def test_password_change_follows_the_seed_policy(client_in, portal) -> None:
    data = {
        "form": "password",
        "old_password": PASSWORD,
        "new_password1": "alllowercase",
        "new_password2": "alllowercase",
    }
    response = client_in.post("/portal/profile/", data)
    assert response.status_code == 400 and "must contain" in " ".join(_errors(response))
    data["new_password1"] = data["new_password2"] = "Better-pass2"
    assert client_in.post("/portal/profile/", data).status_code == 302
    assert Client().login(username="cust", password="Better-pass2")


def test_password_reset_by_email_works_once(portal, smtp_server) -> None:
    client = Client()
    response = client.post("/portal/password-reset/", {"email": "CUST"})
    assert response.status_code == 302 and response["Location"] == "/portal/password-reset/sent/"
    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == "c@c.example"
    link = re.search(r"http://testserver(/portal/password-reset/\S+/)", mail.get_content())
    assert link is not None
    page = client.get(link.group(1), follow=True)
    assert "Choose a new password" in _text(page)
    form_url = page.redirect_chain[-1][0]
    weak = client.post(form_url, {"new_password1": "weakweak", "new_password2": "weakweak"})
    assert weak.status_code == 200 and "must contain" in _text(weak)
    done = client.post(form_url, {"new_password1": "Fresh-pass3", "new_password2": "Fresh-pass3"})
    assert done.status_code == 302 and done["Location"] == "/portal/password-reset/done/"
    assert Client().post("/portal/login/", {"username": "cust", "password": "Fresh-pass3"}).status_code == 302
    again = Client().get(link.group(1), follow=True)
    assert "This link no longer works" in _text(again)


def test_password_reset_mails_no_staff_and_no_stranger(portal, smtp_server) -> None:
    get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1!")
    for login in ("boss", "boss@example.com", "nobody"):
        response = Client().post("/portal/password-reset/", {"email": login})
        assert response.status_code == 302  # the same answer whoever asks
    assert smtp_server.messages == []


def test_why_did_my_call_fail_shows_the_trace_without_the_carriers(client_in, portal) -> None:
    customer, alice = portal["customer"], portal["alice"]
    Account.objects.filter(pk=alice.pk).update(allow_international=False)
    failed = _cdr(customer, alice, 5, disposition="failed", sip_code=403, price=Decimal(0))
    listing = _text(client_in.get("/portal/why/"))
    assert f"/portal/why/{failed.pk}/" in listing
    text = re.sub(r"</?code>", "", _text(client_in.get(f"/portal/why/{failed.pk}/")))
    assert "Refused: international_disabled (SIP 403)" in text
    assert "international calls are off for this account" in text
    assert f"/portal/accounts/{alice.pk}/restrictions/" in text
    # an allowed number: the steps shown name no vendor, connection or gateway
    Account.objects.filter(pk=alice.pk).update(allow_international=True)
    cache.reset()  # update() sends no signal: the process snapshot is dropped by hand
    text = _text(client_in.post("/portal/why/", {"account": alice.pk, "number": "011442079460958"}))
    assert "Allowed now" in text and "rate 44" in text
    for hidden in ("cheap", "dear", "gw.", "Value", "tariff "):
        assert hidden not in text.split('id="decision"')[1], hidden
