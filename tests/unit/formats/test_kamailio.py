"""Kamailio acc records (syslog and acc-table CSV) -> one CanonicalCdr per call."""

from __future__ import annotations

from datetime import UTC, datetime

from tarifa.cdrs.formats import kamailio
from tarifa.core.cdr import CanonicalCdr, LineError

T0 = 1709287200  # 2024-03-01 10:00:00 UTC
PREFIX = "Mar  1 10:00:00 sip1 /usr/sbin/kamailio[2143]: NOTICE: acc [acc.c:279]: acc_log_request(): "
EXTRA = (
    "src_user=alice;src_domain=example.com;src_ip=192.0.2.10;"
    "dst_ouser=0044207946000;dst_user=0044207946000;dst_domain=example.com"
)


def acc(
    method: str,
    call_id: str,
    ts: int,
    code: int | str = 200,
    reason: str = "OK",
    *,
    kind: str = "transaction answered",
    extra: str = EXTRA,
    more: str = "",
) -> str:
    """One acc syslog line: ACC: <kind>: timestamp=...;method=...;... then the log_extra pairs."""
    return (
        f"{PREFIX}ACC: {kind}: timestamp={ts}{more};method={method};from_tag=ft-{call_id};"
        f"to_tag=tt-{call_id};call_id={call_id};code={code};reason={reason};{extra}"
    )


def parse(text: str, tz: str = "UTC") -> list[CanonicalCdr | LineError]:
    return list(kamailio.parse(text, switch="kam-1", tz=tz))


def test_invite_and_bye_make_one_answered_call() -> None:
    text = "\n".join(
        [
            acc("INVITE", "c1@192.0.2.10", T0),
            acc("BYE", "c1@192.0.2.10", T0 + 95),
        ]
    )
    [cdr] = parse(text)
    assert isinstance(cdr, CanonicalCdr)
    assert cdr.call_id == "c1@192.0.2.10"
    assert cdr.caller == "alice"
    assert cdr.sip_user == "alice"
    assert cdr.callee == "0044207946000"
    assert cdr.source_ip == "192.0.2.10"
    assert cdr.start_time == cdr.connect_time == datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)
    assert cdr.end_time == datetime(2024, 3, 1, 10, 1, 35, tzinfo=UTC)
    assert cdr.duration == 95
    assert cdr.disposition == "answered"
    assert cdr.sip_code == 200
    assert cdr.switch == "kam-1"


def test_milliseconds_of_time_mode_2_round_the_duration_up() -> None:
    text = "\n".join(
        [
            acc("INVITE", "c2", T0, more=f";time_attr={T0}.250"),
            acc("BYE", "c2", T0 + 60, more=f";time_attr={T0 + 60}.251"),
        ]
    )
    [cdr] = parse(text)
    assert cdr.start_time == datetime(2024, 3, 1, 10, 0, 0, 250_000, tzinfo=UTC)
    assert cdr.duration == 61  # 60.001 s


def test_microseconds_of_time_mode_1() -> None:
    text = "\n".join(
        [
            acc("INVITE", "c3", T0, more=";time_exten=900000"),
            acc("BYE", "c3", T0 + 10, more=";time_exten=100000"),
        ]
    )
    [cdr] = parse(text)
    assert cdr.duration == 10  # 9.2 s


def test_reinvite_and_second_bye_are_ignored() -> None:
    text = "\n".join(
        [
            acc("INVITE", "c4", T0),
            acc("INVITE", "c4", T0 + 30),  # re-INVITE (hold)
            acc("ACK", "c4", T0 + 1),
            acc("BYE", "c4", T0 + 42),
            acc("BYE", "c4", T0 + 43, code=481, reason="Call Leg/Transaction Does Not Exist"),
        ]
    )
    [cdr] = parse(text)
    assert cdr.duration == 42


def test_failed_invites_are_one_unanswered_call_each() -> None:
    text = "\n".join(
        [
            acc("INVITE", "busy-1", T0, 486, "Busy Here", kind="call missed"),
            acc("INVITE", "busy-1", T0, 486, "Busy Here"),  # same failure, failed_transaction_flag
            acc("INVITE", "cancel-1", T0 + 5, 487, "Request Terminated"),
            acc("INVITE", "noans-1", T0 + 6, 480, "Temporarily Unavailable"),
            acc("INVITE", "fail-1", T0 + 7, 503, "Service Unavailable"),
        ]
    )
    items = parse(text)
    assert [(c.call_id, c.disposition, c.sip_code, c.duration, c.connect_time) for c in items] == [
        ("busy-1", "busy", 486, 0, None),
        ("cancel-1", "cancelled", 487, 0, None),
        ("noans-1", "no_answer", 480, 0, None),
        ("fail-1", "failed", 503, 0, None),
    ]
    assert items[0].start_time == items[0].end_time == datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)


def test_challenge_then_answer_is_answered() -> None:
    text = "\n".join(
        [
            acc("INVITE", "c5", T0, 407, "Proxy Authentication Required"),
            acc("INVITE", "c5", T0 + 1),
            acc("BYE", "c5", T0 + 31),
        ]
    )
    [cdr] = parse(text)
    assert (cdr.disposition, cdr.duration, cdr.sip_code) == ("answered", 30, 200)


def test_answered_invite_without_bye_is_an_error_at_its_line() -> None:
    text = "\n".join(
        [
            "Mar  1 09:59:59 sip1 /usr/sbin/kamailio[2143]: INFO: <script>: new request",  # not acc: skipped
            acc("INVITE", "open-1", T0),
            acc("INVITE", "c6", T0 + 1),
            acc("BYE", "c6", T0 + 11),
        ]
    )
    items = parse(text)
    assert isinstance(items[0], LineError)
    assert items[0].line == 2
    assert items[0].reason == "no BYE for call 'open-1' in this input"
    assert isinstance(items[1], CanonicalCdr) and items[1].call_id == "c6"


def test_orphan_bye_and_malformed_records() -> None:
    text = "\n".join(
        [
            acc("INVITE", "a1", T0),  # 1
            acc("BYE", "orphan", T0 + 2),  # 2 no INVITE
            acc("INVITE", "", T0 + 3),  # 3 no call_id
            f"{PREFIX}ACC: transaction answered: timestamp=soon;method=INVITE;call_id=x;code=200",  # 4
            acc("INVITE", "a5", T0 + 5, code="2OO"),  # 5 bad code
            acc("INVITE", "a6", T0 + 6, extra="src_user=bob"),  # 6 no callee (answered)
            acc("BYE", "a1", T0 + 20),  # 7
            acc("BYE", "a6", T0 + 21),  # 8
        ]
    )
    items = parse(text)
    assert [(type(i).__name__, i.line if isinstance(i, LineError) else i.call_id) for i in items] == [
        ("CanonicalCdr", "a1"),
        ("LineError", 2),
        ("LineError", 3),
        ("LineError", 4),
        ("LineError", 5),
        ("LineError", 6),
    ]
    reasons = [i.reason for i in items if isinstance(i, LineError)]
    assert reasons[0] == "BYE for call 'orphan' has no INVITE in this input"
    assert reasons[1] == "call_id is missing"
    assert "timestamp 'soon'" in reasons[2]
    assert "code '2OO'" in reasons[3]
    assert "no callee" in reasons[4]
    assert items[0].duration == 20


def test_canonical_extras_win_over_the_usual_names() -> None:
    extra = EXTRA + ";callee=442079460001;account_code=acme;trunk=pbx-acme"
    [cdr] = parse("\n".join([acc("INVITE", "c7", T0, extra=extra), acc("BYE", "c7", T0 + 5)]))
    assert (cdr.callee, cdr.account_code, cdr.trunk) == ("442079460001", "acme", "pbx-acme")


def test_not_an_acc_log_at_all() -> None:
    [error] = parse("hello\nworld\n")
    assert isinstance(error, LineError)
    assert error.line == 1
    assert "no Kamailio acc record" in error.reason
    assert parse("") == []


# acc table exported as CSV (db_flag; db_extra columns after the core ones; time in local time).
CSV_HEADER = "id,method,from_tag,to_tag,callid,sip_code,sip_reason,time,src_user,src_ip,dst_user"


def test_acc_table_csv() -> None:
    text = "\n".join(
        [
            CSV_HEADER,
            "1,INVITE,ft1,tt1,d1@host,200,OK,2024-03-01 11:00:00,alice,192.0.2.10,0044207946000",
            "2,INVITE,ft2,tt2,d2@host,486,Busy Here,2024-03-01 11:00:10,bob,192.0.2.11,0033142685300",
            "3,INVITE,ft3,tt3,d3@host,200,OK,2024-03-01 25:00:00,carol,192.0.2.12,0049301234567",
            "4,BYE,ft1,tt1,d1@host,200,OK,2024-03-01 11:02:00,alice,192.0.2.10,0044207946000",
        ]
    )
    items = parse(text, tz="Europe/Paris")
    assert isinstance(items[0], CanonicalCdr)
    assert items[0].call_id == "d1@host"
    assert items[0].start_time == datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)
    assert items[0].duration == 120
    assert (items[1].call_id, items[1].disposition, items[1].caller) == ("d2@host", "busy", "bob")
    assert isinstance(items[2], LineError) and items[2].line == 4
    assert "time '2024-03-01 25:00:00'" in items[2].reason


def test_acc_table_csv_with_a_bad_header_is_one_error() -> None:
    text = "method,callid,sip_code,sip_reason\nINVITE,x,200,OK\n"
    items = parse(text)
    assert len(items) == 1
    assert items[0].line == 1
    assert "missing required column 'time'" in items[0].reason


def test_acc_table_csv_with_unix_timestamps_and_microseconds() -> None:
    text = "\n".join(
        [
            "method,from_tag,to_tag,call_id,code,reason,timestamp,time_exten,src_user,dst_user",
            f"INVITE,f,t,e1,200,OK,{T0},500000,alice,100",
            f"BYE,f,t,e1,200,OK,{T0 + 9},600000,alice,100",
        ]
    )
    [cdr] = parse(text, tz="Asia/Tokyo")  # epochs are UTC: tz is not used
    assert cdr.start_time == datetime(2024, 3, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    assert cdr.duration == 10  # 9.1 s
