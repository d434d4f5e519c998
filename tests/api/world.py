"""Two resellers, each with a customer, an account and devices, and tokens of every kind and scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tarifa.api.models import ApiToken
from tarifa.customers.models import Account, Customer, IpDevice, SipDevice
from tarifa.rating.models import Rate, Tariff


@dataclass
class Tenants:
    operator: Customer
    objects: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.tokens[name]}"}


def _customer(parent: Customer, name: str, kind: str = "customer") -> Customer:
    return Customer.objects.create(
        parent=parent,
        kind=kind,
        name=name,
        company=f"{name} Co",
        web_username=name.lower(),
        tariff=parent.tariff,
        email=f"{name.lower()}@example.com",
        phone="+12015550123",
        country="US",
    )


def build(operator: Customer) -> Tenants:
    t = Tenants(operator)
    for side in ("1", "2"):
        reseller = _customer(operator, f"Res{side}", "reseller")
        customer = _customer(reseller, f"Cust{side}")
        account = Account.objects.create(customer=customer, name=f"acct{side}")
        tariff = Tariff.objects.create(name=f"Own{side}", owner=reseller)
        t.objects[f"reseller{side}"] = reseller
        t.objects[f"customer{side}"] = customer
        t.objects[f"account{side}"] = account
        t.objects[f"sip{side}"] = SipDevice.objects.create(account=account, login=f"dev{side}x", secret="S3cret-dev-99")
        t.objects[f"ip{side}"] = IpDevice.objects.create(account=account, address=f"198.51.100.{side}")
        t.objects[f"tariff{side}"] = tariff
        t.objects[f"rate{side}"] = Rate.objects.create(tariff=tariff, prefix="44", destination="UK")
    issued = {
        "op_full": {"operator": True, "scopes": ["full"]},
        "op_read": {"operator": True, "scopes": ["read"]},
        "op_customers": {"operator": True, "scopes": ["customers:write"]},
        "res1_full": {"customer": t.objects["reseller1"], "scopes": ["full"]},
        "res1_read": {"customer": t.objects["reseller1"], "scopes": ["read"]},
        "cust1_full": {"customer": t.objects["customer1"], "scopes": ["full"]},
        "cust1_read": {"customer": t.objects["customer1"], "scopes": ["read"]},
    }
    for name, scope in issued.items():
        _token, raw = ApiToken.issue(name, **scope)
        t.tokens[name] = raw
    return t
