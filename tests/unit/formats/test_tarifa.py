"""Tarifa's canonical CDR format: CSV with a header, and JSON Lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tarifa.cdrs.formats import tarifa
from tarifa.core.cdr import CanonicalCdr, LineError

HEADER = "call_id,caller,callee,start_time,connect_time,end_time,duration,disposition,sip_user,source_ip,account_code"


def parse_csv(text: str, tz: str = "UTC") -> list[CanonicalCdr | LineError]:
    return list(tarifa.parse(text, switch="edge-1", tz=tz))


def parse_json(text: str, tz: str = "UTC") -> list[CanonicalCdr | LineError]:
    return list(tarifa.parse_json(text, switch="edge-1", tz=tz))


def test_csv_answered_call_with_offsets() -> None:
    text = (
        HEADER
        + "\n"
        + (
            "call-1,1001,0044207946000,2024-03-01T10:00:00+01:00,2024-03-01T10:00:05+01:00,"
            "2024-03-01T10:01:07+01:00,62,answered,alice,192.0.2.10,acme\n"
        )
    )
    [cdr] = parse_csv(text)
    assert cdr == CanonicalCdr(
        call_id="call-1",
        callee="0044207946000",
        caller="1001",
        switch="edge-1",
        start_time=datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC),
        connect_time=datetime(2024, 3, 1, 9, 0, 5, tzinfo=UTC),
        end_time=datetime(2024, 3, 1, 9, 1, 7, tzinfo=UTC),
        duration=62,
        disposition="answered",
        sip_user="alice",
        source_ip="192.0.2.10",
        account_code="acme",
    )
    assert cdr.start_time.tzinfo is UTC


def test_csv_minimal_columns_and_defaults() -> None:
    [cdr] = parse_csv("callee,duration,start_time,call_id\n0044207946000,12.2,2024-03-01 10:00:00Z,c-2\n")
    assert (cdr.call_id, cdr.duration, cdr.leg) == ("c-2", 13, "a")
    assert (cdr.disposition, cdr.direction) == ("answered", "outbound")
    assert cdr.connect_time is None and cdr.sip_code is None


def test_csv_time_without_offset_is_read_in_tz() -> None:
    [cdr] = parse_csv("call_id,callee,start_time,duration\nc-3,100,2024-07-01 12:00:00,0\n", tz="Europe/Paris")
    assert cdr.start_time == datetime(2024, 7, 1, 10, 0, 0, tzinfo=UTC)


def test_csv_switch_column_overrides_the_argument_when_filled() -> None:
    text = (
        "call_id,callee,start_time,duration,switch,leg\n"
        "c-4,100,2024-03-01T10:00:00Z,5,edge-2,b\n"
        "c-5,100,2024-03-01T10:00:00Z,5,,\n"
    )
    first, second = parse_csv(text)
    assert (first.switch, first.leg) == ("edge-2", "b")
    assert (second.switch, second.leg) == ("edge-1", "a")


def test_csv_unanswered_and_inbound_did() -> None:
    text = (
        "call_id,callee,start_time,duration,disposition,sip_code,direction,did\n"
        "c-6,0044207946000,2024-03-01T10:00:00Z,0,busy,486,outbound,\n"
        "c-7,442071234567,2024-03-01T10:00:00Z,30,answered,200,inbound,442071234567\n"
    )
    busy, inbound = parse_csv(text)
    assert (busy.disposition, busy.sip_code) == ("busy", 486)
    assert (inbound.direction, inbound.did) == ("inbound", "442071234567")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("call_id,callee,start_time,duration,colour", "unknown column 'colour'"),
        ("call_id,callee,start_time", "missing required column 'duration'"),
        ("call_id,callee,start_time,duration,callee", "repeated column 'callee'"),
        ("call_id,callee,start_time,duration,", "empty column name in position 5"),
    ],
)
def test_csv_bad_header_is_one_error_on_line_1_and_nothing_else(header: str, expected: str) -> None:
    items = parse_csv(header + "\nc-1,100,2024-03-01T10:00:00Z,5\nc-2,100,2024-03-01T10:00:00Z,5\n")
    assert len(items) == 1
    assert isinstance(items[0], LineError)
    assert items[0].line == 1
    assert items[0].reason.startswith("bad header: ")
    assert expected in items[0].reason


def test_csv_bad_rows_between_good_ones() -> None:
    text = "\n".join(
        [
            "call_id,callee,start_time,duration,disposition,source_ip,end_time",  # 1
            "c-1,100,2024-03-01T10:00:00Z,5,,,",  # 2
            ",100,2024-03-01T10:00:00Z,5,,,",  # 3 no call id
            "c-3,100,01/03/2024 10:00,5,,,",  # 4 bad time
            "c-4,100,2024-03-01T10:00:00Z,-1,,,",  # 5 negative
            "c-5,100,2024-03-01T10:00:00Z,5,maybe,,",  # 6 bad disposition
            "c-6,100,2024-03-01T10:00:00Z,5,,not-an-ip,",  # 7 bad ip
            "c-7,100,2024-03-01T10:00:00Z,5",  # 8 columns
            "c-8,100,2024-03-01T10:00:00Z,5,,,2024-03-01T09:00:00Z",  # 9 ends before start
            "c-9,100,2024-03-01T10:00:00Z,five,,,",  # 10 not a number
            "c-10,100,2024-03-01T10:00:00Z,5,,,",  # 11
        ]
    )
    items = parse_csv(text)
    assert [(type(i).__name__, i.line if isinstance(i, LineError) else i.call_id) for i in items] == [
        ("CanonicalCdr", "c-1"),
        ("LineError", 3),
        ("LineError", 4),
        ("LineError", 5),
        ("LineError", 6),
        ("LineError", 7),
        ("LineError", 8),
        ("LineError", 9),
        ("LineError", 10),
        ("CanonicalCdr", "c-10"),
    ]
    reasons = [i.reason for i in items if isinstance(i, LineError)]
    assert reasons == [
        "call_id is missing",
        "start_time '01/03/2024 10:00' is not a date and time (expected YYYY-MM-DD HH:MM:SS)",
        "duration '-1' is negative",
        "disposition 'maybe' must be one of answered, busy, no_answer, failed, cancelled",
        "source_ip 'not-an-ip' is not an IP address",
        "expected 7 columns as in the header, got 4",
        "end time 2024-03-01T09:00:00Z is before start time 2024-03-01T10:00:00Z",
        "duration 'five' is not a number",
    ]


def test_json_lines() -> None:
    lines = [
        json.dumps(
            {
                "call_id": "j-1",
                "callee": "0044207946000",
                "start_time": "2024-03-01T10:00:00Z",
                "duration": 61.5,
                "caller": "1001",
                "sip_code": 200,
                "trunk": "pbx-acme",
            }
        ),
        "",
        json.dumps(
            {
                "call_id": "j-2",
                "callee": 4420,
                "start_time": "2024-03-01 11:00:00",
                "duration": "0",
                "disposition": "no_answer",
                "connect_time": None,
            }
        ),
        json.dumps(
            {"call_id": "j-3", "callee": "1", "start_time": "2024-03-01T10:00:00Z", "duration": 1, "colour": "red"}
        ),
        '{"call_id": "j-4", ',
        json.dumps(["j-5"]),
        json.dumps({"call_id": "j-6", "callee": "1", "start_time": "2024-03-01T10:00:00Z", "duration": True}),
        json.dumps({"call_id": "j-7", "callee": "1", "start_time": "2024-03-01T10:00:00Z", "duration": 0.1}),
    ]
    items = parse_json("\n".join(lines), tz="Europe/Paris")
    first, second = items[0], items[1]
    assert isinstance(first, CanonicalCdr) and (first.duration, first.sip_code, first.trunk) == (62, 200, "pbx-acme")
    assert isinstance(second, CanonicalCdr)
    assert (second.callee, second.disposition, second.connect_time) == ("4420", "no_answer", None)
    assert second.start_time == datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)
    errors = items[2:6]
    assert [e.line for e in errors] == [4, 5, 6, 7]
    assert "unknown key 'colour'" in errors[0].reason
    assert errors[1].reason.startswith("not valid JSON")
    assert errors[2].reason == "expected a JSON object, got list"
    assert "duration True is not a number" in errors[3].reason
    assert isinstance(items[6], CanonicalCdr) and items[6].duration == 1


def test_bom_and_crlf() -> None:
    text = (
        "\ufeffcall_id,callee,start_time,duration\r\nc-1,100,2024-03-01T10:00:00Z,5\r\nc-2,,2024-03-01T10:00:00Z,5\r\n"
    )
    first, error = parse_csv(text)
    assert isinstance(first, CanonicalCdr)
    assert isinstance(error, LineError) and error.line == 3 and error.reason == "callee is missing"
    assert error.text == "c-2,,2024-03-01T10:00:00Z,5"


def test_a_nul_character_is_refused_for_its_line() -> None:
    """PostgreSQL text cannot hold NUL: the record is refused, its neighbours are kept."""
    good = {"call_id": "n1", "callee": "4420", "start_time": "2026-03-01T10:00:00Z", "duration": 5}
    items = parse_json(
        "\n".join(json.dumps(r) for r in (good, {**good, "call_id": "n\u00002"}, {**good, "call_id": "n3"}))
    )
    assert [type(i).__name__ for i in items] == ["CanonicalCdr", "LineError", "CanonicalCdr"]
    assert items[1].line == 2 and "call_id contains a NUL character" in items[1].reason
