"""Asterisk cdr_csv Master.csv -> CanonicalCdr (samples written from the cdr_csv column order)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tarifa.cdrs.formats import asterisk
from tarifa.core.cdr import CanonicalCdr, LineError

# cdr_csv quotes text fields (a quote doubled), writes duration/billsec bare and an
# unanswered call's answer time as nothing at all.
ANSWERED = (
    '"","1001","0044207946000","from-internal","""Alice"" <1001>","SIP/alice-0000000a",'
    '"SIP/provider-0000000b","Dial","SIP/provider/0044207946000,60","2024-03-01 10:00:00",'
    '"2024-03-01 10:00:05","2024-03-01 10:01:07",67,62,"ANSWERED","DOCUMENTATION"'
)
NO_ANSWER = (
    '"acme","1002","0033142685300","from-internal","""Bob"" <1002>","PJSIP/bob-00000001","PJSIP/carol-00000002",'
    '"Dial","PJSIP/carol,20","2024-03-01 10:05:00",,"2024-03-01 10:05:20",20,0,"NO ANSWER","DOCUMENTATION"'
)
BUSY = (
    '"","1003","0049301234567","from-internal","""Carol"" <1003>","SIP/carol-0000000c","SIP/provider-0000000d",'
    '"Dial","SIP/provider/0049301234567","2024-03-01 10:06:00",,"2024-03-01 10:06:03",3,0,"BUSY","DOCUMENTATION"'
)
CONGESTION = (
    '"","1003","0049301234568","from-internal","""Carol"" <1003>","SIP/carol-0000000e","",'
    '"Dial","SIP/provider/0049301234568","2024-03-01 10:07:00",,"2024-03-01 10:07:01",1,0,"CONGESTION","DOCUMENTATION"'
)
# loguniqueid=yes and loguserfield=yes: 18 columns.
WITH_UNIQUEID = (
    '"acme","+15551230000","0044207946001","from-trunk","""Dave"" <+15551230000>","PJSIP/dave-0000002a",'
    '"PJSIP/provider-0000002b","Dial","PJSIP/0044207946001@provider","2024-07-01 12:00:00","2024-07-01 12:00:10",'
    '"2024-07-01 12:30:10",1810,1800,"ANSWERED","BILLING","1719828000.42","vip"'
)


def parse(text: str, tz: str = "UTC") -> list[CanonicalCdr | LineError]:
    return list(asterisk.parse(text, switch="pbx-1", tz=tz))


def test_answered_call_in_local_time() -> None:
    [cdr] = parse(ANSWERED, tz="Europe/Paris")
    assert isinstance(cdr, CanonicalCdr)
    assert cdr.callee == "0044207946000"
    assert cdr.caller == "1001"
    # 10:00 in Paris in March (CET, UTC+1) is 09:00 UTC.
    assert cdr.start_time == datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)
    assert cdr.connect_time == datetime(2024, 3, 1, 9, 0, 5, tzinfo=UTC)
    assert cdr.end_time == datetime(2024, 3, 1, 9, 1, 7, tzinfo=UTC)
    assert cdr.duration == 62  # billsec, not duration
    assert cdr.disposition == "answered"
    assert cdr.sip_user == "alice"
    assert cdr.account_code == ""
    assert cdr.switch == "pbx-1"
    assert cdr.leg == "a"
    assert cdr.direction == "outbound"
    assert cdr.sip_code is None


def test_summer_time_offset() -> None:
    [cdr] = parse(WITH_UNIQUEID, tz="Europe/Paris")
    assert cdr.start_time == datetime(2024, 7, 1, 10, 0, 0, tzinfo=UTC)  # CEST is UTC+2


def test_usegmtime_is_read_as_utc() -> None:
    [cdr] = parse(ANSWERED)
    assert cdr.start_time == datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)


def test_without_uniqueid_call_id_is_a_stable_content_hash() -> None:
    [first] = parse(ANSWERED)
    [again] = parse(ANSWERED + "\r\n")
    [other] = parse(ANSWERED.replace("0000000a", "0000000f"))
    assert first.call_id.startswith("sha1:") and len(first.call_id) == 45
    assert first.call_id == again.call_id
    assert first.call_id != other.call_id


def test_uniqueid_and_userfield_columns() -> None:
    [cdr] = parse(WITH_UNIQUEID)
    assert cdr.call_id == "1719828000.42"
    assert cdr.account_code == "acme"
    assert cdr.sip_user == "dave"
    assert cdr.caller == "+15551230000"
    assert cdr.duration == 1800


def test_seventeen_columns_read_the_uniqueid() -> None:
    line = WITH_UNIQUEID.rsplit(",", 1)[0]
    [cdr] = parse(line)
    assert cdr.call_id == "1719828000.42"


@pytest.mark.parametrize(
    ("line", "disposition"),
    [(NO_ANSWER, "no_answer"), (BUSY, "busy"), (CONGESTION, "failed"), (BUSY.replace('"BUSY"', '"FAILED"'), "failed")],
)
def test_unanswered_dispositions(line: str, disposition: str) -> None:
    [cdr] = parse(line)
    assert cdr.disposition == disposition
    assert cdr.connect_time is None
    assert cdr.duration == 0


def test_no_answer_identity_fields() -> None:
    [cdr] = parse(NO_ANSWER)
    assert cdr.sip_user == "bob"  # PJSIP endpoint
    assert cdr.account_code == "acme"
    assert cdr.end_time == datetime(2024, 3, 1, 10, 5, 20, tzinfo=UTC)


def test_fractional_billsec_is_rounded_up_exactly() -> None:
    [cdr] = parse(ANSWERED.replace(",67,62,", ",67,61.000001,"))
    assert cdr.duration == 62
    [cdr] = parse(ANSWERED.replace(",67,62,", ",67,62.0,"))
    assert cdr.duration == 62


def test_caller_from_clid_when_src_is_empty() -> None:
    [cdr] = parse(ANSWERED.replace('"1001","0044', '"","0044'))
    assert cdr.caller == "1001"


@pytest.mark.parametrize(
    ("channel", "user"),
    [
        ("SIP/alice-0000000a", "alice"),
        ("PJSIP/trunk-acme-0000001f", "trunk-acme"),
        ("IAX2/bob-1234", ""),
        ("Local/100@from-internal-00000001;1", ""),
        ("DAHDI/1-1", ""),
    ],
)
def test_sip_user_of_channel(channel: str, user: str) -> None:
    assert asterisk.sip_user_of(channel) == user


def test_malformed_lines_do_not_stop_the_good_ones() -> None:
    text = "\n".join(
        [
            ANSWERED,  # 1
            ANSWERED.replace("2024-03-01 10:00:00", "yesterday"),  # 2 bad start time
            "",  # 3 blank: skipped
            NO_ANSWER.replace(",20,0,", ",20,-5,"),  # 4 negative billsec
            '"","1001","0044"',  # 5 wrong column count
            BUSY.replace('"BUSY"', '"MAYBE"'),  # 6 unknown disposition
            '"","1001","0044207946000,"x"',  # 7 broken quoting
            BUSY,  # 8
        ]
    )
    items = parse(text)
    assert [type(i).__name__ for i in items] == [
        "CanonicalCdr",
        "LineError",
        "LineError",
        "LineError",
        "LineError",
        "LineError",
        "CanonicalCdr",
    ]
    errors = [i for i in items if isinstance(i, LineError)]
    assert [e.line for e in errors] == [2, 4, 5, 6, 7]
    assert "start 'yesterday' is not a date and time" in errors[0].reason
    assert "billsec '-5' is negative" in errors[1].reason
    assert "expected 16, 17 or 18 columns" in errors[2].reason and "got 3" in errors[2].reason
    assert "unknown disposition 'MAYBE'" in errors[3].reason
    assert "malformed CSV" in errors[4].reason
    assert errors[0].text.startswith('"","1001"')
    assert items[-1].disposition == "busy"


def test_end_before_answer_is_refused() -> None:
    [error] = parse(ANSWERED.replace('"2024-03-01 10:01:07"', '"2024-03-01 09:59:00"'))
    assert isinstance(error, LineError)
    assert error.line == 1
    assert "end time 2024-03-01T09:59:00Z is before answer time" in error.reason


def test_empty_dst_is_refused() -> None:
    [error] = parse(ANSWERED.replace('"0044207946000","from-internal"', '"","from-internal"'))
    assert isinstance(error, LineError)
    assert "dst" in error.reason


def test_time_skipped_by_the_clock_change_is_refused() -> None:
    line = (
        ANSWERED.replace("2024-03-01 10:00:00", "2024-03-31 02:30:00")
        .replace("2024-03-01 10:00:05", "2024-03-31 03:00:05")
        .replace("2024-03-01 10:01:07", "2024-03-31 03:01:07")
    )
    [error] = parse(line, tz="Europe/Paris")
    assert isinstance(error, LineError)
    assert "does not exist in time zone Europe/Paris" in error.reason


def test_repeated_hour_resolves_by_order() -> None:
    # Clocks go back at 03:00 CEST to 02:00 CET: the call starts at the first 02:59:40 and
    # ends 25 s later at the second 02:00:05, which must not be read as the first one.
    line = (
        ANSWERED.replace("2024-03-01 10:00:00", "2024-10-27 02:59:40")
        .replace("2024-03-01 10:00:05", "2024-10-27 02:59:45")
        .replace("2024-03-01 10:01:07", "2024-10-27 02:00:05")
    )
    [cdr] = parse(line.replace(",67,62,", ",25,20,"), tz="Europe/Paris")
    assert isinstance(cdr, CanonicalCdr)
    assert cdr.start_time == datetime(2024, 10, 27, 0, 59, 40, tzinfo=UTC)
    assert cdr.end_time == datetime(2024, 10, 27, 1, 0, 5, tzinfo=UTC)


def test_unknown_zone_is_an_argument_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        asterisk.parse(ANSWERED, switch="pbx-1", tz="Mars/Olympus")


def test_empty_input_gives_nothing() -> None:
    assert parse("") == []
    assert parse("\n\n") == []
