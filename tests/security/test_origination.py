"""Bad LATA files and who may import one: every refusal names file, row, field and rule, and a
refused file changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tarifa.dids.lata import LataRejected, import_lata
from tarifa.dids.models import NpaNxx

pytestmark = pytest.mark.django_db
GOOD = b"npa_nxx,lata,state\n212555,132,NY\n"


@pytest.fixture
def table() -> None:
    import_lata(GOOD, "seed.csv")


def _rows() -> list[tuple[str, str, str]]:
    return list(NpaNxx.objects.values_list("npa_nxx", "lata", "state"))


@pytest.mark.parametrize(
    ("data", "where", "rule"),
    [
        (b"npa_nxx,lata,state\n212555,999,NJ\n12345,132,NY\n", ("bad.csv", 3, "npa_nxx", "12345"), "six digits"),
        (b"npa_nxx,lata,state\n212555,999,NJ\n312555,13x,NY\n", ("bad.csv", 3, "lata", "13x"), "1 to 5 digits"),
        (b"npa_nxx,lata,state\n212555,999,NJ\n312555,132,N1\n", ("bad.csv", 3, "state", "N1"), "two-letter"),
        (b"npa_nxx,lata,state\n212555,999,NJ\n212555,132,NY\n", ("bad.csv", 3, "npa_nxx", "212555"), "repeats row 2"),
        (
            b"npa_nxx,lata,state\n212555,999,NJ\n=cmd|' /C calc'!A0,132,NY\n",
            ("bad.csv", 3, "npa_nxx", "=cmd|' /C calc'!A0"),
            "six digits",
        ),
        (b"npa_nxx,lata,state\n212555,999,NJ\n\xff\xfe,132,NY\n", ("bad.csv", 3, "file", "byte 33"), "UTF-8"),
        (b"npa_nxx,lata,state\n212555,999,NJ\n312555,132,NY\x00\n", ("bad.csv", 0, "file", "NUL"), "must be text"),
        (b"prefix,lata\n212555,999\n", ("bad.csv", 1, "header", "prefix,lata"), "missing column(s) npa_nxx, state"),
        (
            b'npa_nxx,lata,state\n212555,999,NJ\n"312555,132,NY\n',
            ("bad.csv", 3, "npa_nxx", "312555,132,NY"),
            "six digits",
        ),
    ],
)
def test_a_bad_row_refuses_the_whole_file_and_names_where_and_why(table, data: bytes, where: tuple, rule: str) -> None:
    with pytest.raises(LataRejected) as refused:
        import_lata(data, "bad.csv", replace=True)
    problem = next(p for p in refused.value.problems if p.field == where[2])
    assert (problem.file, problem.row, problem.field, problem.value) == where
    assert rule in problem.rule and str(problem).startswith("bad.csv")
    assert _rows() == [("212555", "132", "NY")]  # the good first row (a change) was not applied either


def test_an_oversized_file_is_refused_before_it_is_read(table, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tarifa.dids import lata as origination

    monkeypatch.setattr(origination, "LATA_FILE_MAX", 10)
    with pytest.raises(LataRejected) as refused:
        import_lata(GOOD, "big.csv")
    assert refused.value.problems[0].field == "file" and "at most 10 bytes" in refused.value.problems[0].rule


def _staff(username: str, *codenames: str):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_user(username, f"{username}@x.example", "Staff-pass-1234", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_the_admin_import_page_lists_every_problem_and_imports_nothing(client, table) -> None:  # type: ignore[no-untyped-def]
    client.force_login(_staff("clerk", "add_npanxx", "view_npanxx"))
    url = reverse("admin:dids_npanxx_lata_import")
    bad = SimpleUploadedFile("up.csv", b"npa_nxx,lata,state\n212555,7,CA\n99,1,NY\n312555,1,N\n")
    response = client.post(url, {"file": bad, "replace": "on"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "2 problems" in page and "up.csv" in page and "must be six digits" in page and "two-letter" in page
    assert _rows() == [("212555", "132", "NY")]
    good = SimpleUploadedFile("up.csv", b"npa_nxx,lata,state\n212555,7,CA\n")
    response = client.post(url, {"file": good})
    assert response.status_code == 302 and _rows() == [("212555", "7", "CA")]


def test_the_admin_import_needs_the_add_permission(client, table) -> None:  # type: ignore[no-untyped-def]
    client.force_login(_staff("viewer", "view_npanxx"))
    url = reverse("admin:dids_npanxx_lata_import")
    assert client.get(url).status_code == 403
    response = client.post(url, {"file": SimpleUploadedFile("x.csv", b"npa_nxx,lata,state\n312555,1,NY\n")})
    assert response.status_code == 403 and _rows() == [("212555", "132", "NY")]
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


def test_penalties_for_a_month_far_ahead_are_refused_without_a_traceback() -> None:
    """Attack probe: December 9999 has no following month; the command used to end in a traceback."""
    from datetime import date

    from tarifa.cdrs.penalties import PeriodNotClosed, post_short_call_penalties

    for month in (date(9999, 12, 1), date(2999, 1, 1)):
        with pytest.raises(PeriodNotClosed, match="is not over yet"):
            post_short_call_penalties(month)
