"""Online sign-up (docs/portal.md, "Online sign-up"): store a new customer inactive with its DIDs
reserved, mail a signed link, activate on the link, give the numbers back when it is never followed.

The link is Django's signing (HMAC with the secret key, as the password reset links) over the
sign-up's id: it works once (a verified sign-up refuses it) and until the sign-up's
``expires_at`` (TARIFA_SIGNUP_VERIFY_HOURS after it was made)."""

from __future__ import annotations

import secrets
import smtplib
from datetime import datetime, timedelta
from typing import Any

from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from tarifa import config
from tarifa.billing.models import ServicePlan
from tarifa.customers.choices import AccountKind, CustomerKind, Status
from tarifa.customers.models import Account, Customer
from tarifa.dids.choices import DidStatus
from tarifa.dids.models import Did, DidPlan
from tarifa.dids.service import DidRefused, assign_did, search_dids, set_status
from tarifa.portal.models import Signup

__all__ = [
    "MAX_DIDS",
    "MailNotSent",
    "Refused",
    "available_dids",
    "create",
    "expire_due",
    "link_token",
    "offered_plans",
    "operator",
    "signup_did_plan",
    "verify",
]

TOKEN_SALT = "tarifa.portal.signup"

#: Numbers one sign-up may choose, and how many the page lists.
MAX_DIDS = 3
LISTED_DIDS = 50


class Refused(Exception):
    """A verification link that cannot be used: the message says why."""


class MailNotSent(Exception):
    """The SMTP server did not take the verification e-mail (nothing is stored then)."""


def operator() -> Customer | None:
    """The root of the customer tree: new customers sign up under it."""
    return Customer.objects.filter(kind=CustomerKind.OPERATOR).order_by("pk").first()


def offered_plans() -> QuerySet[ServicePlan]:
    """The service plans the operator offers for sign-up (active, with their tariff)."""
    return ServicePlan.objects.filter(offered_for_signup=True, active=True, signup_tariff__isnull=False).select_related(
        "signup_tariff"
    )


def signup_did_plan() -> DidPlan | None:
    """The DID plan chosen numbers are assigned with; None: no numbers are offered."""
    return DidPlan.objects.filter(offered_for_signup=True).order_by("name").first()


def available_dids() -> QuerySet[Did]:
    """Numbers a sign-up may choose: sellable today, when a DID plan is offered."""
    if signup_did_plan() is None:
        return Did.objects.none()
    return search_dids()


def _sip_password() -> str:
    """A SIP password the account's rules accept (capital, small letter, digit, 12 characters or more);
    the customer sets its own on the portal's security settings."""
    return f"Sk{secrets.token_hex(8)}7"


def link_token(signup: Signup) -> str:
    return signing.dumps({"s": signup.pk}, salt=TOKEN_SALT)


@transaction.atomic
def create(form: Any, dids: list[Did], address: str, link: Any, now: datetime | None = None) -> Signup:
    """Store the sign-up of a valid ``SignupForm`` and mail its link (``link(token)`` makes the URL).

    One transaction: a number taken meanwhile (``DidRefused``) or a mail server that does not answer
    (``MailNotSent``) leaves nothing stored."""
    now = now or timezone.now()
    customer: Customer = form.save()  # inactive; its portal user inactive too (set_web_access)
    plan: ServicePlan = form.cleaned_data["plan"]
    account = Account.objects.create(
        customer=customer, name="Main", kind=AccountKind.SIP_USER, sip_password=_sip_password()
    )
    hours = config.signup().verify_hours
    signup = Signup.objects.create(
        customer=customer,
        account=account,
        plan=plan,
        did_plan=signup_did_plan() if dids else None,
        address=address[:150],
        expires_at=now + timedelta(hours=hours),
    )
    for did in dids:
        set_status(did, DidStatus.RESERVED)  # locks the row; a number taken meanwhile is refused
    signup.dids.set(dids)
    url = link(link_token(signup))
    numbers = "".join(f"\n  +{d.number}" for d in dids)
    body = (
        f"Hello {customer.name},\n\n"
        f"thank you for signing up for {plan.name}. Follow this link within {hours} hours to activate your "
        f"account; your web user name is {customer.web_username}:\n\n{url}\n\n"
        + (f"These numbers are kept for you until then:{numbers}\n\n" if dids else "")
        + "If you did not sign up, ignore this e-mail: nothing is charged and the account stays closed.\n"
    )
    try:
        send_mail("Activate your Tarifa account", body, None, [customer.email])
    except (OSError, smtplib.SMTPException) as exc:
        raise MailNotSent(str(exc)) from exc
    return signup


def verify(token: str, now: datetime | None = None) -> Signup:
    """Follow a verification link: activate the customer, its user and account, assign its numbers.
    An expired link releases the sign-up's numbers (committed) and is then refused."""
    signup = _verify(token, now or timezone.now())
    if signup is None:
        raise Refused("This activation link has expired: sign up again.")
    return signup


@transaction.atomic
def _verify(token: str, now: datetime) -> Signup | None:
    """The verified sign-up, or None when the link had expired (its numbers are released then)."""
    try:
        pk = int(signing.loads(token, salt=TOKEN_SALT)["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise Refused("This activation link is not valid: copy the whole link from the e-mail.") from None
    signup = Signup.objects.select_for_update().filter(pk=pk).first()
    if signup is None:
        raise Refused("This activation link is not valid: copy the whole link from the e-mail.")
    if signup.verified_at is not None:
        raise Refused("This activation link was already used: log in with your web user name and password.")
    if signup.expired_at is not None or signup.expires_at <= now:
        _expire(signup, now)
        return None
    customer = signup.customer
    customer.status = Status.ACTIVE
    customer.save(update_fields=["status", "updated_at"])
    if customer.user is not None:
        customer.user.is_active = True
        customer.user.save(update_fields=["is_active"])
    account = signup.account
    account.service_plan, account.activation_date = signup.plan, now.date()
    account.save(update_fields=["service_plan", "activation_date", "updated_at"])
    if signup.did_plan is not None:
        for did in signup.dids.order_by("number"):
            try:
                assign_did(did, account, signup.did_plan, on=now.date())
            except DidRefused as exc:
                raise Refused(f"Your account could not be activated: {exc}") from None
    signup.verified_at = now
    signup.save(update_fields=["verified_at"])
    return signup


def _expire(signup: Signup, now: datetime) -> None:
    if signup.expired_at is not None:
        return
    for did in signup.dids.filter(status=DidStatus.RESERVED):
        set_status(did, DidStatus.AVAILABLE)
    signup.expired_at = now
    signup.save(update_fields=["expired_at"])


def expire_due(now: datetime | None = None) -> int:
    """Give back the numbers of sign-ups whose link was never followed in time; how many expired.
    Idempotent: run on every sign-up page and by ``tarifa signups expire``."""
    now = now or timezone.now()
    count = 0
    due = Signup.objects.filter(verified_at__isnull=True, expired_at__isnull=True, expires_at__lte=now)
    for pk in list(due.values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            signup = Signup.objects.select_for_update().get(pk=pk)
            if signup.verified_at is None and signup.expired_at is None:
                _expire(signup, now)
                count += 1
    return count
