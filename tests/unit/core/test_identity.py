"""The one matching order (core.identity): an identity naming several accounts never picks one."""

from __future__ import annotations

import pytest

from tarifa.core.identity import AMBIGUOUS, NO_ACCOUNT, ORDER, UNKNOWN_PBX, AccountIndex, Identity, Resolution

# Four tenants of one hosted PBX, each with extension 1000 (as in the demo data); Initech also
# has an IP device for its PBX (account 31) and a trunk named like Globex's.
GLOBEX, INITECH, UMBRELLA, HOOLI = 1, 2, 3, 4


@pytest.fixture
def index() -> AccountIndex:
    idx = AccountIndex()
    for account, customer in ((10, GLOBEX), (20, INITECH), (30, UMBRELLA), (40, HOOLI)):
        idx.account(account, customer, code=f"A{account}", extension="1000")
        idx.tenant(f"C{customer}", customer)
    idx.account(31, INITECH, code="A31")
    idx.device("source_ip", "198.51.100.9", 31)
    idx.account(11, GLOBEX, code="A11", trunk="pbx-trunk")
    idx.account(21, INITECH, code="A21", trunk="pbx-trunk")
    idx.account(12, GLOBEX, code="A12")
    idx.device("sip_user", "globex1", 12)
    idx.account(50, 5, code="A50", extension="2000")
    idx.device("source_ip", "203.0.113.5", 99)  # a device of an account not in the index (disabled)
    return idx


def test_an_extension_without_its_pbx_names_nobody(index: AccountIndex) -> None:
    """Issue 14: an extension counts only with the PBX it comes from; alone it is an unknown PBX's."""
    found = index.resolve(Identity(extension="1000"))
    assert found == Resolution(None, UNKNOWN_PBX, "extension", (10, 20, 30, 40))
    assert index.resolve(Identity(extension="2000")) == Resolution(None, UNKNOWN_PBX, "extension", (50,))


def test_the_source_ip_of_a_tenants_device_settles_it(index: AccountIndex) -> None:
    assert index.resolve(Identity(extension="1000", source_ip="198.51.100.9")) == Resolution(20, via="extension")


def test_the_tenant_code_settles_it(index: AccountIndex) -> None:
    assert index.resolve(Identity(extension="1000", account_code="C3")).account_id == 30


def test_an_account_code_of_one_of_them_settles_it(index: AccountIndex) -> None:
    # the extension decides first (it names candidates); the account code picks among them
    assert index.resolve(Identity(extension="1000", account_code="A40")) == Resolution(40, via="extension")


def test_contradicting_identities_stay_ambiguous(index: AccountIndex) -> None:
    # Initech's PBX address and Umbrella's tenant code: no candidate is both
    found = index.resolve(Identity(extension="1000", source_ip="198.51.100.9", account_code="C3"))
    assert (found.account_id, found.reason) == (None, AMBIGUOUS)


def test_an_identity_that_names_nothing_says_nothing(index: AccountIndex) -> None:
    found = index.resolve(Identity(extension="1000", source_ip="192.0.2.200", account_code="nobody"))
    assert (found.reason, found.candidates) == (UNKNOWN_PBX, (10, 20, 30, 40))
    assert index.resolve(Identity(extension="1000", source_ip="192.0.2.200", trunk="pbx-trunk")).reason == AMBIGUOUS


def test_a_shared_trunk_name_is_ambiguous_until_settled(index: AccountIndex) -> None:
    assert index.resolve(Identity(trunk="pbx-trunk")).reason == AMBIGUOUS
    assert index.resolve(Identity(trunk="pbx-trunk", source_ip="198.51.100.9")).account_id == 21


def test_a_unique_identity_decides_without_the_others(index: AccountIndex) -> None:
    assert index.resolve({"extension": "1000", "sip_user": "globex1"}) == Resolution(12, via="sip_user")
    assert index.resolve(Identity(extension="2000", account_code="A50")) == Resolution(50, via="extension")
    assert index.resolve(Identity(sip_user="globex1", source_ip="198.51.100.9")).account_id == 12


def test_the_order_is_sip_trunk_extension_code_ip(index: AccountIndex) -> None:
    assert ORDER == ("sip_user", "trunk", "extension", "account_code", "source_ip")
    assert index.resolve(Identity(account_code="A12", source_ip="198.51.100.9")).account_id == 12
    assert index.resolve(Identity(sip_user="unknown", source_ip="198.51.100.9")) == Resolution(31, via="source_ip")


def test_nothing_known_is_no_account(index: AccountIndex) -> None:
    assert index.resolve(Identity()) == Resolution(None, NO_ACCOUNT)
    assert index.resolve(Identity(source_ip="203.0.113.5")) == Resolution(None, NO_ACCOUNT)  # account not indexed


def test_lookups_for_the_vectorised_path(index: AccountIndex) -> None:
    assert index.unique("extension") == {"2000": 50}
    assert index.ambiguous("extension") == {"1000"}
    assert index.unique("source_ip") == {"198.51.100.9": 31}
    assert index.ambiguous("trunk") == {"pbx-trunk"}


def test_another_tenants_pbx_never_reaches_a_unique_extension(index: AccountIndex) -> None:
    """Issue 14: only customer 5 has extension 2000; Initech's PBX (198.51.100.9) reporting a 2000
    it never registered is Initech's traffic ("all traffic from the address"), not customer 5's."""
    assert index.resolve(Identity(extension="2000", source_ip="198.51.100.9")) == Resolution(31, via="source_ip")


def test_an_extension_registered_with_a_pbx_matches_only_that_pbx() -> None:
    """Two tenants of one hosted PBX each with a PBX of their own: 1000 goes by the PBX address."""
    idx = AccountIndex()
    idx.account(1, 100, code="A1", extension="1000", pbx="192.0.2.10")
    idx.account(2, 200, code="A2", extension="1000", pbx="192.0.2.20")
    idx.account(3, 300, code="A3")  # the host's PBX device, owner of neither extension
    idx.device("source_ip", "192.0.2.30", 3)
    assert idx.resolve(Identity(extension="1000", source_ip="192.0.2.10")) == Resolution(1, via="extension")
    assert idx.resolve(Identity(extension="1000", source_ip="192.0.2.20")) == Resolution(2, via="extension")
    # the same customer's account code does not stand in for the PBX the extension is registered with
    assert idx.resolve(Identity(extension="1000", account_code="A1")) == Resolution(1, via="account_code")
    assert idx.resolve(Identity(extension="1000", source_ip="192.0.2.99")).reason == UNKNOWN_PBX
    assert idx.resolve(Identity(extension="1000", source_ip="192.0.2.30")) == Resolution(3, via="source_ip")
    assert idx.in_scope(1, "1000", Identity(source_ip="192.0.2.10"))
    assert not idx.in_scope(1, "1000", Identity(source_ip="192.0.2.20"))
