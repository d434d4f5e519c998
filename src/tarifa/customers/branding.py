"""Who an invoice or a portal page says it is from (issue 15's issuer block, issue 16's white label).

* The operator: its :class:`~tarifa.customers.models.IssuerProfile`; without one, the operator
  customer's company, address, e-mail and phone.
* A reseller: its :class:`~tarifa.customers.models.ResellerBranding` (display name, logo, address,
  contact, payment instructions); each empty field falls back to the reseller's own customer record
  (company, address, e-mail, phone), never to the operator's: a white-label customer does not see
  the operator's name or logo.

:func:`brand_of` gives the identity a customer sees (its nearest reseller above it, else the
operator): the portal uses it for its header, the invoice run for the invoice's issuer.
"""

from __future__ import annotations

from tarifa.core.invoice_document import Party
from tarifa.customers import choices as c
from tarifa.customers.models import BrandingFields, Customer, IssuerProfile, ResellerBranding

__all__ = ["brand_of", "customer_party", "issuer_party", "operator_party", "reseller_party"]


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.replace("\r", "").split("\n") if line.strip())


def _party(name: str, fields: BrandingFields | None, fallback: Customer | None) -> Party:
    address = _lines(fields.address) if fields is not None else ()
    if not address and fallback is not None:
        address = _lines(fallback.address)
    email = (fields.email if fields is not None else "") or (fallback.email if fallback is not None else "")
    phone = (fields.phone if fields is not None else "") or (fallback.phone if fallback is not None else "")
    logo = bytes(fields.logo) if fields is not None and fields.logo else None
    return Party(
        name=name,
        address=address,
        tax_id=fields.tax_id if fields is not None else "",
        email=email,
        phone=phone,
        website=fields.website if fields is not None else "",
        logo=logo,
        payment_instructions=fields.payment_instructions if fields is not None else "",
    )


def operator_party() -> Party:
    profile = IssuerProfile.current()
    operator = Customer.objects.filter(kind=c.CustomerKind.OPERATOR).order_by("pk").first()
    name = profile.name if profile is not None else (operator.company if operator is not None else "")
    return _party(name or "Tarifa", profile, operator)


def reseller_party(reseller: Customer) -> Party:
    branding = ResellerBranding.objects.filter(reseller=reseller).first()
    name = (branding.display_name if branding is not None else "") or reseller.company
    return _party(name, branding, reseller)


def issuer_party(issuer: Customer | None) -> Party:
    """The invoice issuer's identity: the reseller's white label, or the operator's (issuer None)."""
    if issuer is None or issuer.kind == c.CustomerKind.OPERATOR:
        return operator_party()
    return reseller_party(issuer)


def brand_of(customer: Customer) -> Party:
    """The identity ``customer`` sees: its nearest reseller ancestor's, else the operator's."""
    node = customer.parent
    while node is not None:
        if node.kind == c.CustomerKind.RESELLER:
            return reseller_party(node)
        node = node.parent
    return operator_party()


def customer_party(customer: Customer) -> Party:
    """The billed customer as an invoice prints it."""
    address = _lines(customer.address)
    extra = [customer.pin if customer.pin and customer.pin not in customer.address else ""]
    extra.append(str(customer.country.name) if customer.country else "")
    contact = (customer.name,) if customer.name and customer.name != customer.company else ()
    return Party(
        name=customer.company or customer.name,
        address=contact + address + tuple(filter(None, extra)),
        email=customer.email,
        phone=customer.phone,
        account_code=customer.account_code,
    )
