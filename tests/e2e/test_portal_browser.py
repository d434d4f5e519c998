"""The customer portal in a real browser: Debian's Chromium driven by Playwright against a real
``tarifa serve`` (one server with the demo data set and one browser for the module), on the
database under test (SQLite file or a fresh PostgreSQL database), mail through the real SMTP
server of tests/smtp.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.portal_server import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD, PortalServer, _run, serving
from tests.smtp import Mailbox


@pytest.fixture(scope="module")
def database_url(module_database_url: str) -> str:
    """A migrated database of the kind under test (a copy of the session's template) for the server."""
    return module_database_url


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, _smtp_controller: Mailbox
) -> Iterator[PortalServer]:
    yield from serving(
        tmp_path_factory.mktemp("portal"),
        database_url,
        TARIFA_SMTP_HOST=_smtp_controller.host,
        TARIFA_SMTP_PORT=str(_smtp_controller.port),
        TARIFA_SIGNUP="on",  # the demo offers its "Basic" plan and "US local" numbers for sign-up
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def log_in(page: Page, server: PortalServer, user: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{server.base}/portal/login/")
    page.get_by_label("Web user name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def open_settings(page: Page, server: PortalServer, account: str, group: str) -> None:
    page.goto(f"{server.base}/portal/accounts/")
    page.get_by_role("link", name=f"Edit settings of {account}").click()
    page.get_by_role("link", name=group, exact=True).click()


def cdr(user: str, **extra: Any) -> dict[str, Any]:
    fields = {
        "call_id": f"browser-{uuid.uuid4().hex[:12]}",
        "callee": "011442079460958",
        "caller": "12015550123",
        "start_time": (datetime.now(UTC) - timedelta(minutes=3)).isoformat(),
        "duration": 95,
        "sip_user": user,
    }
    fields.update(extra)
    return fields


def test_log_in_and_the_home_page(page: Page, server: PortalServer) -> None:
    log_in(page, server, "acmecorp")
    expect(page).to_have_url(f"{server.base}/portal/")
    expect(page.get_by_role("heading", name="Acme Corp")).to_be_visible()
    expect(page.locator("#balance")).to_contain_text("USD")
    expect(page.locator("#available")).to_contain_text("USD")
    expect(page.get_by_role("img", name=re.compile("Daily spend of the last 30 days"))).to_be_visible()
    # the back office stays closed to a customer user
    page.goto(f"{server.base}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))


def test_lock_out_after_repeated_failures(page: Page, server: PortalServer) -> None:
    for _ in range(5):
        log_in(page, server, "initech", "Wrong-pass1")
        expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed log-ins for user name 'initech'")
    expect(page.get_by_role("alert")).to_contain_text("log-in is locked until")
    log_in(page, server, "initech")  # the right password, refused while locked
    expect(page.get_by_role("alert")).to_contain_text("log-in is locked until")
    expect(page).to_have_url(f"{server.base}/portal/login/")


def test_a_cdr_pushed_through_the_api_appears_in_the_call_history(page: Page, server: PortalServer) -> None:
    log_in(page, server, "acmecorp")
    page.goto(f"{server.base}/portal/calls/")
    caller = "1201555" + uuid.uuid4().hex[:4].translate(str.maketrans("abcdef", "123456"))
    expect(page.get_by_role("cell", name=caller)).to_have_count(0)
    answer = server.post_cdrs([cdr("acmecorp1", caller=caller)])
    assert answer["stored"] == 1, answer
    page.reload()
    row = page.locator("#calls tbody tr", has=page.get_by_role("cell", name=caller))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("011442079460958")
    expect(row).to_contain_text("95 s")
    page.get_by_label("Number").fill(caller)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#totals")).to_contain_text("1 call,")


def test_a_restriction_changed_and_an_invalid_value_refused(page: Page, server: PortalServer) -> None:
    log_in(page, server, "acmecorp")
    open_settings(page, server, "acmecorp-sip_user-1", "Account restrictions")
    page.get_by_label("Max call time for international calls").fill("1800")
    page.get_by_role("button", name="Save account restrictions").click()
    expect(page.get_by_role("status")).to_contain_text("Account restrictions of acmecorp-sip_user-1 saved.")
    expect(page.get_by_label("Max call time for international calls")).to_have_value("1800")
    page.get_by_label("Max call time for international calls").fill("999999")
    page.get_by_role("button", name="Save account restrictions").click()
    expect(
        page.get_by_text("Max call time for international calls 999999 is refused: must be between 1 and 86400 seconds")
    ).to_be_visible()
    expect(page.get_by_label("Max call time for international calls")).to_have_value("999999")
    expect(page.get_by_label("Max call time for international calls")).to_have_attribute("aria-invalid", "true")
    page.goto(page.url)  # a new GET (a reload would post again): nothing was changed
    expect(page.get_by_label("Max call time for international calls")).to_have_value("1800")


def test_a_refused_calls_trace(page: Page, server: PortalServer) -> None:
    log_in(page, server, "acmecorp")
    open_settings(page, server, "acmecorp-sip_user-1", "Account restrictions")
    page.get_by_label("Allow international calls").uncheck()
    page.get_by_role("button", name="Save account restrictions").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    failed = cdr("acmecorp1", callee="01133142685300", duration=0, disposition="failed", sip_code=403)
    assert server.post_cdrs([failed])["stored"] == 1
    page.get_by_role("link", name="Why did my call fail?").click()
    page.get_by_role("link", name="Why? call to 01133142685300").first.click()
    decision = page.locator("#decision")
    expect(decision).to_contain_text("Refused: international_disabled (SIP 403)")
    expect(decision.locator(".trace")).to_contain_text("international calls are off for this account")
    expect(decision).not_to_contain_text("vendor-")  # carriers are the operator's business
    decision.get_by_role("link", name="Open the settings").click()
    expect(page.get_by_label("Allow international calls")).not_to_be_checked()


def test_another_customers_account_and_cdr_are_404(browser: Browser, page: Page, server: PortalServer) -> None:
    other = browser.new_context()
    theirs = other.new_page()
    log_in(theirs, server, "globexltd")
    theirs.goto(f"{server.base}/portal/accounts/")
    href = theirs.get_by_role("link", name=re.compile("Edit settings of globexltd")).first.get_attribute("href")
    assert href is not None
    account_id = href.rstrip("/").split("/")[-1]
    theirs.goto(f"{server.base}/portal/calls/?date_from=2026-01-01&date_to=2026-01-31")
    call_href = theirs.locator("#calls tbody a").first.get_attribute("href")
    assert call_href is not None
    other.close()

    log_in(page, server, "acmecorp")
    for path in (
        href,
        f"{href}restrictions/",
        call_href,
        call_href.replace("/calls/", "/why/"),
        f"/portal/calls/?account={account_id}",
        f"/portal/calls/export.csv?account={account_id}",
    ):
        response = page.goto(f"{server.base}{path}")
        assert response is not None and response.status == 404, path
    # the form: a select edited in the page to name the other customer's account is refused
    page.goto(f"{server.base}/portal/why/")
    page.locator("#id_account option").first.evaluate("(option, id) => { option.value = id }", account_id)
    page.get_by_label("Number dialled").fill("011442079460958")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_text(f"Account {account_id} is refused: must be one of your accounts")).to_be_visible()
    expect(page.locator("#decision")).to_have_count(0)


def issue_invoice(server: PortalServer, user: str, number: str) -> int:
    """An issued invoice of one line for the demo customer ``user`` (the demo has none), by the
    server's own ``tarifa manage shell``; its id."""
    code = (
        "from datetime import date; from decimal import Decimal as D; "
        "from tarifa.billing.models import Invoice, InvoiceLine; from tarifa.customers.models import Customer; "
        f"c = Customer.objects.get(web_username={user!r}); "
        f"i = Invoice.objects.create(customer=c, number={number!r}, period_start=date(2025, 1, 1), "
        "period_end=date(2025, 1, 31), subtotal=D(3), total=D(3), currency=c.currency); "
        "InvoiceLine.objects.create(invoice=i, section='calls', description='Calls to the UK', calls=2, "
        "seconds=120, unit_price=D(3), amount=D(3)); "
        "Invoice.objects.filter(pk=i.pk).update(status='issued'); print(i.pk)"
    )
    return int(_run(server.env, "manage", "shell", "-c", code).strip().splitlines()[-1])


def test_an_invoice_pdf_downloaded_and_anothers_invoice_is_404(page: Page, server: PortalServer) -> None:
    mine = issue_invoice(server, "acmecorp", f"BR-{uuid.uuid4().hex[:6]}")
    theirs = issue_invoice(server, "globexltd", f"BR-{uuid.uuid4().hex[:6]}")
    log_in(page, server, "acmecorp")
    page.get_by_role("link", name="Invoices").click()
    row = page.locator("#invoices tbody tr").filter(has=page.locator(f'a[href="/portal/invoices/{mine}/"]'))
    expect(row).to_contain_text("Issued")
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("^PDF")).click()
    path = download.value.path()
    assert path is not None and path.read_bytes().startswith(b"%PDF")
    page.goto(f"{server.base}/portal/invoices/{mine}/")
    expect(page.get_by_text("Calls to the UK")).to_be_visible()
    for suffix in ("", "invoice.pdf", "invoice.csv"):
        response = page.request.get(f"{server.base}/portal/invoices/{theirs}/{suffix}")
        assert response.status == 404, suffix


def test_password_reset_through_the_emailed_link(page: Page, server: PortalServer, _smtp_controller: Mailbox) -> None:
    _smtp_controller.clear()
    page.goto(f"{server.base}/portal/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Web user name or e-mail").fill("umbrella")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    [mail] = _smtp_controller.wait_for(1)
    assert mail["To"] == "billing@umbrella.example"
    found = re.search(r"(http://\S+/portal/password-reset/\S+/)", mail.get_content())
    assert found is not None
    link = found.group(1)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill("weakpassword")
    page.get_by_label("New password confirmation").fill("weakpassword")
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_text(re.compile("is refused: must contain"))).to_be_visible()
    page.get_by_label("New password", exact=True).fill("Rain-coat-77X")
    page.get_by_label("New password confirmation").fill("Rain-coat-77X")
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()
    log_in(page, server, "umbrella", "Rain-coat-77X")
    expect(page.get_by_role("heading", name="Umbrella SARL")).to_be_visible()
    page.goto(link)  # single use
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()


def test_sign_up_verify_the_email_and_log_in(page: Page, server: PortalServer, _smtp_controller: Mailbox) -> None:
    _smtp_controller.clear()
    page.goto(f"{server.base}/portal/login/")
    page.get_by_role("link", name="Sign up").click()
    expect(page.get_by_role("heading", name="Sign up")).to_be_visible()
    page.get_by_label("Service plan").select_option(label="Basic")
    page.get_by_label("12015550013").check()
    page.get_by_label("Name", exact=True).fill("Bea Browser")
    page.get_by_label("Company").fill("Browser Works")
    page.get_by_label("Web access user name").fill("browserworks")
    page.get_by_label("Email address").fill("bea@browser.example")
    page.get_by_label("Phone number", exact=True).fill("+12015550188")
    page.get_by_label("Country").select_option("US")
    page.get_by_label("Web access password").fill("weakpass")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text(re.compile("Web access password .* is refused"))).to_be_visible()  # kept, refused
    expect(page.get_by_label("Company")).to_have_value("Browser Works")
    page.get_by_label("Web access password").fill("Browse-pass7!")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    log_in(page, server, "browserworks", "Browse-pass7!")  # not before the link
    expect(page.get_by_role("alert")).to_contain_text("is refused")
    [mail] = _smtp_controller.wait_for(1)
    assert mail["To"] == "bea@browser.example"
    found = re.search(r"(http://\S+/portal/signup/verify/\S+/)", mail.get_content())
    assert found is not None, mail.get_content()
    page.goto(found.group(1))
    page.get_by_role("button", name="Activate my account").click()
    expect(page.get_by_text("Your account is active")).to_be_visible()
    log_in(page, server, "browserworks", "Browse-pass7!")
    expect(page.get_by_role("heading", name="Browser Works")).to_be_visible()
    page.goto(f"{server.base}/portal/accounts/")
    expect(page.locator("#accounts")).to_contain_text("Main")
    page.goto(found.group(1))  # single use
    page.get_by_role("button", name="Activate my account").click()
    expect(page.get_by_role("alert")).to_contain_text("already used")


def test_phone_sized_screen(browser: Browser, server: PortalServer) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    log_in(page, server, "acmecorp")
    for path in ("/portal/", "/portal/calls/", "/portal/accounts/", "/portal/profile/"):
        page.goto(f"{server.base}{path}")
        expect(page.get_by_role("navigation", name="Portal")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    context.close()
