"""FreeSWITCH mod_cdr_csv (default "example" template) -> CanonicalCdr."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tarifa.cdrs.formats import freeswitch_csv
from tarifa.core.cdr import CanonicalCdr, LineError


def line(
    *,
    cause: str = "NORMAL_CLEARING",
    answer: str = "2024-03-01 10:00:04",
    billsec: str = "60",
    uuid: str = "a5c9f6c0-e752-11e3-8bfb-65b6c3cdac7d",
    dest: str = "0044207946000",
    end: str = "2024-03-01 10:01:04",
    duration: str = "64",
) -> str:
    """One line of the "example" template: 15 quoted columns."""
    cells = [
        "Alice",
        "1001",
        dest,
        "default",
        "2024-03-01 10:00:00",
        answer,
        end,
        duration,
        billsec,
        cause,
        uuid,
        "b7e2a1d4-e752-11e3-8bfc-65b6c3cdac7d",
        "1001",
        "PCMA",
        "PCMA",
    ]
    return ",".join(f'"{cell}"' for cell in cells)


def parse(text: str, tz: str = "UTC") -> list[CanonicalCdr | LineError]:
    return list(freeswitch_csv.parse(text, switch="fs-1", tz=tz))


def test_answered_leg() -> None:
    [cdr] = parse(line(), tz="America/New_York")
    assert isinstance(cdr, CanonicalCdr)
    assert cdr.call_id == "a5c9f6c0-e752-11e3-8bfb-65b6c3cdac7d"
    assert cdr.caller == "1001"
    assert cdr.callee == "0044207946000"
    # 10:00 in New York on 1 March (EST, UTC-5) is 15:00 UTC.
    assert cdr.start_time == datetime(2024, 3, 1, 15, 0, 0, tzinfo=UTC)
    assert cdr.connect_time == datetime(2024, 3, 1, 15, 0, 4, tzinfo=UTC)
    assert cdr.end_time == datetime(2024, 3, 1, 15, 1, 4, tzinfo=UTC)
    assert cdr.duration == 60
    assert cdr.disposition == "answered"
    assert cdr.sip_code == 200
    assert cdr.account_code == "1001"
    assert cdr.switch == "fs-1"
    assert cdr.leg == "a"


@pytest.mark.parametrize(
    ("cause", "disposition", "sip_code"),
    [
        ("USER_BUSY", "busy", 486),
        ("NO_ANSWER", "no_answer", 480),
        ("NO_USER_RESPONSE", "no_answer", 408),
        ("ORIGINATOR_CANCEL", "cancelled", 487),
        ("CALL_REJECTED", "failed", 603),
        ("UNALLOCATED_NUMBER", "failed", 404),
        ("NORMAL_TEMPORARY_FAILURE", "failed", 503),
        ("NORMAL_CLEARING", "failed", None),  # hung up before any answer: nothing to bill
        ("MEDIA_TIMEOUT", "failed", None),
    ],
)
def test_unanswered_legs_by_hangup_cause(cause: str, disposition: str, sip_code: int | None) -> None:
    [cdr] = parse(line(cause=cause, answer="", billsec="0", end="2024-03-01 10:00:20", duration="20"))
    assert cdr.disposition == disposition
    assert cdr.sip_code == sip_code
    assert cdr.duration == 0
    assert cdr.connect_time is None


def test_answered_leg_ending_on_another_cause_is_answered() -> None:
    [cdr] = parse(line(cause="MEDIA_TIMEOUT"))
    assert cdr.disposition == "answered"
    assert cdr.duration == 60


def test_fractional_billsec_rounds_up() -> None:
    [cdr] = parse(line(billsec="59.2"))
    assert cdr.duration == 60


def test_builtin_thirteen_column_template() -> None:
    # mod_cdr_csv's own fallback template has no codecs and a space before accountcode.
    text = (
        '"Bob","1002","0033142685300","default","2024-03-01 11:00:00","2024-03-01 11:00:02",'
        '"2024-03-01 11:00:32","32","30","NORMAL_CLEARING","c1d2e3f4-0000-4000-8000-000000000001","", "acme"'
    )
    [cdr] = parse(text)
    assert cdr.account_code == "acme"
    assert cdr.call_id == "c1d2e3f4-0000-4000-8000-000000000001"
    assert cdr.duration == 30


def test_malformed_lines_between_good_ones() -> None:
    text = "\r\n".join(
        [
            line(uuid="11111111-1111-4111-8111-111111111111"),  # 1
            line(uuid=""),  # 2 no call id
            line(uuid="33333333-3333-4333-8333-333333333333") + ',"extra"',  # 3 16 columns
            line(uuid="44444444-4444-4444-8444-444444444444", answer="10:00"),  # 4 bad stamp
            line(uuid="55555555-5555-4555-8555-555555555555", billsec="-1"),  # 5 negative
            line(uuid="66666666-6666-4666-8666-666666666666", dest=""),  # 6 no callee
            line(uuid="77777777-7777-4777-8777-777777777777", cause="USER_BUSY", answer="", billsec="0"),  # 7
        ]
    )
    items = parse(text)
    assert [(type(i).__name__, getattr(i, "line", None)) for i in items] == [
        ("CanonicalCdr", None),
        ("LineError", 2),
        ("LineError", 3),
        ("LineError", 4),
        ("LineError", 5),
        ("LineError", 6),
        ("CanonicalCdr", None),
    ]
    reasons = [i.reason for i in items if isinstance(i, LineError)]
    assert "uuid (the call id) is empty" in reasons[0]
    assert "expected 15 columns" in reasons[1] and "got 16" in reasons[1]
    assert "answer_stamp '10:00' is not a date and time" in reasons[2]
    assert "billsec '-1' is negative" in reasons[3]
    assert "destination_number is empty" in reasons[4]
    assert items[-1].disposition == "busy"
