"""The portal's pages. Thin: each view takes the customer from ``customer_view`` and reads
through ``scope`` (another tenant's id is a 404); forms are the shared ones of ``forms``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from tarifa import changes, config
from tarifa.billing import allocation, pdfs
from tarifa.billing import render as invoice_render
from tarifa.calls.pops import pop_names
from tarifa.cdrs.choices import Disposition
from tarifa.customers.models import Customer
from tarifa.dids.service import DidRefused
from tarifa.notices.models import NoticeSettings
from tarifa.portal import explain, history, home, scope, signup, viewas
from tarifa.portal.access import customer_view, may_use_portal
from tarifa.portal.forms import (
    AutoTopUpForm,
    LoginForm,
    MailNotSent,
    NoticeForm,
    PasswordChange,
    ProfileForm,
    ResetForm,
    ResetSetPassword,
    SignupForm,
    WhyForm,
    settings_form,
)
from tarifa.portal.groups import GROUPS, group_named

#: The payment history shows the newest movements only (the statement of account has them all).
PAYMENTS_LIST = 100

#: "Recent" for "why did my call fail?": the failed calls of the last days.
WHY_DAYS = 7
WHY_LIST = 20


def _me(request: HttpRequest) -> Customer:
    customer: Customer = request.portal_customer  # type: ignore[attr-defined]
    return customer


def _viewing(request: HttpRequest) -> viewas.Viewing | None:
    viewing: viewas.Viewing | None = getattr(request, "portal_viewing", None)
    return viewing


def _saved(request: HttpRequest, form: Any, before: dict[str, Any] | None) -> Any:
    """Save a portal form and write the change to the audit log under the user who made it: the
    customer's own user, or the staff user or reseller viewing as the customer."""
    with transaction.atomic():
        obj = form.save()
        changes.announce(
            viewas.actor(request, _viewing(request)),
            obj,
            "update" if before is not None else "create",
            before,
            changes.snapshot(obj),
        )
    return obj


def _before(obj: Any) -> dict[str, Any] | None:
    return changes.snapshot(obj) if obj.pk is not None else None


# --- log-in, log-out, password reset -------------------------------------------------------------


class Login(auth_views.LoginView):
    form_class = LoginForm
    template_name = "portal/login.html"
    redirect_authenticated_user = False

    def get_default_redirect_url(self) -> str:
        return reverse("portal:home")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["signup_open"] = config.signup().enabled and signup.offered_plans().exists()
        return context


@require_http_methods(["POST"])
def logout(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import logout as end_session

    viewas.end(request)
    end_session(request)
    messages.info(request, "You are logged out.")
    return redirect("portal:login")


class Reset(auth_views.PasswordResetView):
    form_class = ResetForm
    template_name = "portal/reset.html"
    email_template_name = "portal/reset_email.txt"
    subject_template_name = "portal/reset_subject.txt"
    success_url = reverse_lazy("portal:reset_done")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form: Any) -> HttpResponse:
        try:
            return super().form_valid(form)
        except MailNotSent:
            form.add_error(None, "The e-mail could not be sent now (the mail server did not answer); try again later.")
            return self.form_invalid(form)


class ResetDone(auth_views.PasswordResetDoneView):
    template_name = "portal/reset_done.html"


class ResetConfirm(auth_views.PasswordResetConfirmView):
    form_class = ResetSetPassword
    template_name = "portal/reset_confirm.html"
    success_url = reverse_lazy("portal:reset_complete")

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        # only a portal user's link: a staff user never resets a password here
        return user if user is not None and may_use_portal(user) else None


class ResetComplete(auth_views.PasswordResetCompleteView):
    template_name = "portal/reset_complete.html"


# --- pages ---------------------------------------------------------------------------------------


@customer_view
def home_page(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    bars = home.spend_chart(me)
    context = {
        "nav": "home",
        "me": me,
        "summary": home.summary(me),
        "bars": bars,
        "chart_width": home.CHART_WIDTH,
        "chart_height": home.CHART_HEIGHT,
        "chart_total": sum(b.amount for b in bars),
        "live": scope.calls_in_progress(me)[:20],
    }
    return render(request, "portal/home.html", context)


@customer_view
def calls_page(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    _own_account_or_404(me, request.GET.get("account"))
    data = request.GET.copy()
    if not any(data.get(name) for name in ("date_from", "date_to")) and "date_from" not in data:
        start, end = history.default_range(me)
        data["date_from"], data["date_to"] = start.isoformat(), end.isoformat()
    form = history.HistoryFilter(data, customer=me)
    page = None
    totals = None
    cursor_error = ""
    if form.is_valid():
        rows = history.filtered(me, form.cleaned_data)
        after = None
        if request.GET.get("after"):
            try:
                after = history.parse_cursor(request.GET["after"])
            except ValidationError as exc:
                cursor_error = " ".join(exc.messages)
        page = history.page(rows, after)
        totals = history.totals(rows)
    query = data.copy()
    query.pop("after", None)
    context = {
        "nav": "calls",
        "me": me,
        "form": form,
        "page": page,
        "totals": totals,
        "cursor_error": cursor_error,
        "query": query.urlencode(),
        "first_page": "after" in request.GET,
    }
    return render(request, "portal/calls.html", context)


def _own_account_or_404(me: Customer, value: str | None) -> None:
    """An account id in a filter that is not the customer's is a 404, as in a URL."""
    if value:
        scope.account_of(me, value)


@customer_view
def calls_export(request: HttpRequest, fmt: str) -> HttpResponse:
    me = _me(request)
    if fmt not in ("csv", "xlsx"):
        raise Http404("no such format")
    _own_account_or_404(me, request.GET.get("account"))
    form = history.HistoryFilter(request.GET, customer=me)
    if not form.is_valid():
        return render(request, "portal/calls.html", {"nav": "calls", "me": me, "form": form}, status=400)
    content, content_type, extension = history.export(history.filtered(me, form.cleaned_data), fmt)
    response = HttpResponse(content, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="calls-{me.account_code}-{stamp}.{extension}"'
    return response


@customer_view
def call_page(request: HttpRequest, cdr_id: int) -> HttpResponse:
    me = _me(request)
    cdr = scope.cdr_of(me, cdr_id)
    return render(request, "portal/call.html", {"nav": "calls", "me": me, "cdr": cdr})


@customer_view
def accounts_page(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    return render(request, "portal/accounts.html", {"nav": "accounts", "me": me, "accounts": scope.accounts(me)})


@customer_view
def account_settings(request: HttpRequest, account_id: int, group: str = "routing") -> HttpResponse:
    me = _me(request)
    account = scope.account_of(me, account_id)
    chosen = group_named(group)
    if chosen is None:
        raise Http404("no such settings group")
    form_class = settings_form(chosen)
    if request.method == "POST":
        before = _before(account)
        form = form_class(request.POST, instance=account)
        if form.is_valid():
            _saved(request, form, before)
            messages.success(request, f"{chosen.title} of {account.name} saved.")
            return redirect("portal:account_settings", account_id=account.pk, group=chosen.slug)
        status = 400
        account.refresh_from_db()  # the page's header shows what is stored, not what was typed
    else:
        form = form_class(instance=account)
        status = 200
    context = {
        "nav": "accounts",
        "me": me,
        "account": account,
        "groups": GROUPS,
        "group": chosen,
        "form": form,
    }
    return render(request, "portal/settings.html", context, status=status)


@customer_view
def profile_page(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    stored_email = me.email  # the form's validation writes the posted one onto ``me``
    which = request.POST.get("form") if request.method == "POST" else None
    profile = ProfileForm(request.POST if which == "profile" else None, instance=me)
    user: Any = request.user  # a portal user (customer_view)
    password = PasswordChange(user, request.POST if which == "password" else None)
    password.request = request  # ThrottledOldPasswordMixin reads it
    settings = NoticeSettings.objects.filter(customer_id=me.pk).first() or NoticeSettings(customer=me)
    notices = NoticeForm(request.POST if which == "notices" else None, instance=settings)
    status = 200
    before_profile, before_notices = _before(me), _before(settings)
    if which == "profile":
        if profile.is_valid() and _viewing(request) is not None and profile.cleaned_data.get("email") != stored_email:
            # the e-mail is where password reset links go: a viewer changing it could take the log-in over
            profile.add_error(
                "email",
                f"E-mail {profile.cleaned_data.get('email')!r} is refused: the log-in e-mail cannot be changed "
                "while viewing as the customer",
            )
        if profile.is_valid():
            with transaction.atomic():
                saved = _saved(request, profile, before_profile)
                if saved.user is not None and saved.user.email != saved.email:
                    saved.user.email = saved.email  # reset links go to the customer's e-mail
                    saved.user.save(update_fields=["email"])
            messages.success(request, "Profile saved.")
            return redirect("portal:profile")
        status = 400
        me.refresh_from_db()
    elif which == "notices":
        if notices.is_valid():
            _saved(request, notices, before_notices)  # the row is created on the first save
            messages.success(request, "Low-balance notices saved.")
            return redirect("portal:profile")
        status = 400
    elif which == "password" and _viewing(request) is not None:
        messages.error(request, "The portal password cannot be changed while viewing as the customer.")
        return redirect("portal:profile")
    elif which == "password":
        if password.is_valid():
            from django.contrib.auth import update_session_auth_hash

            password.save()
            update_session_auth_hash(request, password.user)
            messages.success(request, "Portal password changed.")
            return redirect("portal:profile")
        status = 400
    context = {"nav": "profile", "me": me, "profile": profile, "password": password, "notices": notices}
    return render(request, "portal/profile.html", context, status=status)


@customer_view
def why_page(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    since = timezone.now() - timedelta(days=WHY_DAYS)
    failed = (
        scope.cdrs(me)
        .filter(start_time__gte=since)
        .exclude(disposition=Disposition.ANSWERED)
        .select_related("account")
        .order_by("-start_time", "-pk")[:WHY_LIST]
    )
    accounts = scope.accounts(me)
    form = WhyForm(request.POST or None, accounts=accounts)
    result = account = None
    if request.method == "POST" and form.is_valid():
        account = scope.account_of(me, form.cleaned_data["account"])
        allowed, _others = pop_names(account)
        pop = allowed[0] if account.pop_restriction.exists() and allowed else ""  # a call through its POP
        result = _explain(account, form.cleaned_data["number"], pop=pop)
    context = {
        "nav": "why",
        "me": me,
        "failed": failed,
        "form": form,
        "result": result,
        "account": account,
        "days": WHY_DAYS,
    }
    return render(request, "portal/why.html", context, status=400 if form.errors else 200)


@customer_view
def why_call(request: HttpRequest, cdr_id: int) -> HttpResponse:
    me = _me(request)
    cdr = scope.cdr_of(me, cdr_id)
    if cdr.account is None:
        raise Http404("no account for this call")
    allowed, _refused = pop_names(cdr.account)
    pop = cdr.switch if cdr.switch in allowed or cdr.switch in _refused else ""
    result = _explain(cdr.account, cdr.callee, caller=cdr.caller, source_ip=cdr.source_ip or "", pop=pop)
    return render(request, "portal/why_call.html", {"nav": "why", "me": me, "cdr": cdr, "result": result})


def _explain(account: Any, number: str, **call: str) -> explain.Explanation:
    from tarifa.calls.authorize import simulate_for

    decision = simulate_for(account.account_code, number, **call)
    return explain.explain(decision.allowed, decision.reason, decision.sip_code, decision.trace)


# --- invoices and payments -----------------------------------------------------------------------


@customer_view
def invoices_page(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    rows = list(scope.invoices(me).order_by("-period_start", "-pk"))
    paid = allocation.allocated_by_invoice([row.pk for row in rows])
    notes: dict[int, list[Any]] = {}
    for row in rows:
        if row.kind == "credit_note" and row.credited_invoice_id:
            notes.setdefault(row.credited_invoice_id, []).append(row)
    shown = {row.pk for row in rows}
    # a credit note is listed under the invoice it corrects (alone only if that one is not shown)
    listed = [row for row in rows if row.kind != "credit_note" or row.credited_invoice_id not in shown]
    entries = [
        {"invoice": row, "paid": paid.get(row.pk, Decimal(0)), "credit_notes": notes.get(row.pk, [])} for row in listed
    ]
    return render(request, "portal/invoices.html", {"nav": "invoices", "me": me, "entries": entries})


@customer_view
def invoice_page(request: HttpRequest, invoice_id: int) -> HttpResponse:
    me = _me(request)
    invoice = scope.invoice_of(me, invoice_id)
    paid = allocation.allocated_by_invoice([invoice.pk]).get(invoice.pk, Decimal(0))
    allocations = invoice.allocations.select_related("source").order_by("created_at", "pk")
    context = {
        "nav": "invoices",
        "me": me,
        "invoice": invoice,
        "doc": invoice_render.invoice_document(invoice),
        "paid": paid,
        "unpaid": invoice.total - paid,
        "allocations": allocations,
        "credit_notes": scope.invoices(me).filter(credited_invoice_id=invoice.pk).order_by("pk"),
        "methods": scope.payment_methods(me).filter(active=True),
        "can_pay": _can_pay(invoice, paid),
    }
    return render(request, "portal/invoice.html", context)


def _can_pay(invoice: Any, paid: Decimal) -> bool:
    """The "Pay now" button: an issued, unpaid invoice and a configured card gateway."""
    from tarifa.billing.gateway import configured_gateway

    return (
        invoice.kind == "invoice" and invoice.status == "issued" and invoice.total > paid and bool(configured_gateway())
    )


@customer_view
def invoice_file(request: HttpRequest, invoice_id: int, fmt: str) -> HttpResponse:
    me = _me(request)
    invoice = scope.invoice_of(me, invoice_id)
    if fmt == "pdf":
        response = HttpResponse(pdfs.stored_pdf(invoice), content_type="application/pdf")
    elif fmt == "csv":
        response = HttpResponse(invoice_render.invoice_csv(invoice), content_type="text/csv; charset=utf-8")
    else:
        raise Http404("no such format")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in invoice.number)
    response["Content-Disposition"] = f'attachment; filename="{safe}.{fmt}"'
    return response


@customer_view
@require_http_methods(["POST"])
def invoice_pay(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """Pay an issued invoice with a saved method: the amount is the server's (its unpaid amount);
    the form sends only the method."""
    from tarifa.billing.cards import charge_invoice
    from tarifa.billing.gateway import GatewayError, configured_gateway
    from tarifa.core.payments import Refused

    me = _me(request)
    invoice = scope.invoice_of(me, invoice_id)
    if _viewing(request) is not None:
        messages.error(request, "Payments cannot be made while viewing as the customer: the customer pays.")
        return redirect("portal:invoice", invoice_id=invoice.pk)
    gateway = configured_gateway()
    if gateway is None:
        messages.error(request, "Card payments are not available: no payment gateway is configured.")
        return redirect("portal:invoice", invoice_id=invoice.pk)
    chosen = _int_or_none(request.POST.get("method"))
    method = scope.payment_methods(me).filter(active=True, pk=chosen).first() if chosen is not None else None
    if method is None:
        messages.error(
            request, f"Method {request.POST.get('method', '')!r} is refused: must be one of your active saved methods"
        )
        return redirect("portal:invoice", invoice_id=invoice.pk)
    try:
        outcome = charge_invoice(me, invoice.pk, method, gateway)
    except Refused as exc:
        messages.error(request, str(exc))
    except GatewayError as exc:
        messages.error(request, f"The payment could not be completed now: {exc}")
    else:
        charge = outcome.charge
        if charge.status == "succeeded":
            messages.success(request, f"Paid {charge.amount} {charge.currency} with {method}.")
        else:
            messages.error(request, f"The payment was not accepted ({charge.status}): {outcome.message}")
    return redirect("portal:invoice", invoice_id=invoice.pk)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


@customer_view
def payments_page(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    methods = scope.payment_methods(me)
    setting = scope.auto_top_up(me)
    form = AutoTopUpForm(request.POST if request.method == "POST" else None, instance=setting, methods=methods)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _saved(request, form, _before(setting))  # the row is created on the first save
            messages.success(request, "Automatic top-up saved.")
            return redirect("portal:payments")
        status = 400
    context = {
        "nav": "payments",
        "me": me,
        "movements": scope.money_movements(me)[:PAYMENTS_LIST],
        "limit": PAYMENTS_LIST,
        "methods": methods,
        "form": form,
        "setting": setting,
    }
    return render(request, "portal/payments.html", context, status=status)


# --- online sign-up ------------------------------------------------------------------------------


def _signup_open() -> tuple[Customer, Any]:
    """The operator new customers go under and the plans offered; 404 while sign-up is closed
    (TARIFA_SIGNUP off, no operator, no plan offered)."""
    operator = signup.operator()
    plans = signup.offered_plans()
    if not config.signup().enabled or operator is None or not plans.exists():
        raise Http404("online sign-up is not open")
    return operator, plans


def _numbers() -> Any:
    available = signup.available_dids()
    listed = list(available.values_list("pk", flat=True)[: signup.LISTED_DIDS])
    return available.filter(pk__in=listed)


def signup_page(request: HttpRequest) -> HttpResponse:
    """The public sign-up form; on success the customer is stored inactive and the link mailed."""
    from tarifa.throttle import service as throttle

    operator, plans = _signup_open()
    signup.expire_due()  # numbers of sign-ups never verified in time go back first
    form = SignupForm(request.POST or None, operator=operator, plans=plans, numbers=_numbers())
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            address = throttle.client_address(request)
            lock = throttle.count_signup(address)
            if lock is not None:
                form.add_error(None, lock.message())
            else:
                try:
                    created = signup.create(
                        form,
                        list(form.cleaned_data.get("dids") or []),
                        address,
                        lambda token: request.build_absolute_uri(reverse("portal:signup_verify", args=[token])),
                    )
                except DidRefused as exc:
                    form.add_error("dids" if "dids" in form.fields else None, str(exc))
                except signup.MailNotSent:
                    form.add_error(
                        None, "The e-mail could not be sent now (the mail server did not answer); try again later."
                    )
                else:
                    request.session["tarifa_signup_email"] = created.customer.email
                    return redirect("portal:signup_sent")
    context = {"form": form, "hours": config.signup().verify_hours}
    response = render(request, "portal/signup.html", context, status=status)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def signup_sent(request: HttpRequest) -> HttpResponse:
    _signup_open()
    email = request.session.get("tarifa_signup_email", "")
    return render(request, "portal/signup_sent.html", {"email": email, "hours": config.signup().verify_hours})


def signup_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mail's link: a page with one button (a mail scanner's GET activates nothing), whose POST
    activates the account once."""
    error = ""
    if request.method == "POST":
        try:
            done = signup.verify(token)
        except signup.Refused as exc:
            error = str(exc)
        else:
            messages.success(
                request, f"Your account is active: log in with your web user name {done.customer.web_username}."
            )
            return redirect("portal:login")
    response = render(request, "portal/signup_verify.html", {"error": error}, status=400 if error else 200)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- "log in as" ---------------------------------------------------------------------------------


def view_as_start(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Open a customer's portal as that customer: staff with the permission (from the customer's
    back-office page) or a reseller (its subtree's customers). A customer one may not view is 404."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    customer = viewas.viewable_by(request.user).filter(pk=customer_id).first()
    if customer is None:
        raise Http404("no such customer")
    if request.method == "POST":
        viewas.start(request, customer.pk)
        return redirect("portal:home")
    return render(request, "portal/view_as.html", {"customer": customer})


@require_http_methods(["POST"])
def view_as_end(request: HttpRequest) -> HttpResponse:
    row = viewas.end(request)
    if row is None:
        return redirect("portal:home")
    messages.info(request, f"You are no longer viewing as {row.customer_repr}.")
    if row.via == row.Via.ADMIN:
        return redirect("admin:customers_customer_change", row.customer_id)
    return redirect("portal:customers")


@customer_view
def customers_page(request: HttpRequest) -> HttpResponse:
    """A reseller's customers (its subtree), each with "Log in as"."""
    me = _me(request)
    if _viewing(request) is not None or me.kind != "reseller":
        raise Http404("only a reseller has customers here")
    rows = viewas.viewable_by(request.user).order_by("company", "name")
    return render(request, "portal/customers.html", {"nav": "customers", "me": me, "customers": rows})
