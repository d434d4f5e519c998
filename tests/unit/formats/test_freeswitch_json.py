"""FreeSWITCH mod_json_cdr documents -> CanonicalCdr."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tarifa.cdrs.formats import freeswitch_json
from tarifa.core.cdr import CanonicalCdr, LineError

START = 1709287200  # 2024-03-01 10:00:00 UTC


def document(
    uuid: str = "0a30dd7c-c222-482f-a322-b1218a15f8cd",
    *,
    answered: bool = True,
    billsec: str | None = "60",
    cause: str = "NORMAL_CLEARING",
    term: str | None = "200",
    b_leg: bool = False,
    **extra: str,
) -> dict[str, Any]:
    """A mod_json_cdr document shaped as the module writes it, values URL-encoded (encode-values=true)."""
    answer_us = (START + 4) * 1_000_000 + 250_000 if answered else 0
    end_us = (START + 64) * 1_000_000 + 500_000
    variables: dict[str, Any] = {
        "uuid": uuid,
        "direction": "inbound",
        "sip_from_user": "1001",
        "sip_auth_username": "alice",
        "sip_to_user": "0044207946000",
        "sip_req_user": "0044207946000",
        "caller_id_number": "1001",
        "sip_network_ip": "192.0.2.10",
        "accountcode": "acme",
        "start_stamp": "2024-03-01%2011%3A00%3A00",
        "start_epoch": str(START),
        "start_uepoch": str(START * 1_000_000 + 125_000),
        "answer_epoch": str(answer_us // 1_000_000),
        "answer_uepoch": str(answer_us),
        "end_epoch": str(end_us // 1_000_000),
        "end_uepoch": str(end_us),
        "hangup_cause": cause,
        "hangup_cause_q850": "16",
    }
    if billsec is not None:
        variables["billsec"] = billsec
    if term is not None:
        variables["sip_term_status"] = term
    variables.update(extra)
    profile: dict[str, Any] = {
        "username": "alice",
        "dialplan": "XML",
        "caller_id_name": "Alice",
        "ani": "1001",
        "caller_id_number": "1001",
        "network_addr": "192.0.2.10",
        "destination_number": "0044207946000",
        "uuid": uuid,
        "source": "mod_sofia",
        "context": "default",
        "chan_name": "sofia/internal/1001@example.com",
    }
    if b_leg:
        profile["originator"] = {"originator_caller_profiles": [{"uuid": "a-leg-uuid"}]}
    return {
        "core-uuid": "d01fd5af-47d1-4cc0-9135-72be72656b21",
        "switchname": "fs1",
        "channel_data": {"state": "CS_REPORTING", "direction": "outbound" if b_leg else "inbound"},
        "variables": variables,
        "callflow": [
            {
                "dialplan": "XML",
                "profile_index": "1",
                "caller_profile": profile,
                "times": {
                    "created_time": str(START * 1_000_000),
                    "answered_time": str(answer_us),
                    "hangup_time": str(end_us),
                    "transfer_time": "0",
                },
            }
        ],
    }


def parse(text: str, tz: str = "UTC") -> list[CanonicalCdr | LineError]:
    return list(freeswitch_json.parse(text, switch="fs-1", tz=tz))


def jsonl(*documents: dict[str, Any]) -> str:
    return "\n".join(json.dumps(d) for d in documents) + "\n"


def test_answered_leg() -> None:
    [cdr] = parse(jsonl(document()))
    assert isinstance(cdr, CanonicalCdr)
    assert cdr.call_id == "0a30dd7c-c222-482f-a322-b1218a15f8cd"
    assert cdr.caller == "1001"
    assert cdr.callee == "0044207946000"
    assert cdr.start_time == datetime(2024, 3, 1, 10, 0, 0, 125_000, tzinfo=UTC)
    assert cdr.connect_time == datetime(2024, 3, 1, 10, 0, 4, 250_000, tzinfo=UTC)
    assert cdr.end_time == datetime(2024, 3, 1, 10, 1, 4, 500_000, tzinfo=UTC)
    assert cdr.duration == 60
    assert cdr.disposition == "answered"
    assert cdr.sip_code == 200
    assert cdr.source_ip == "192.0.2.10"
    assert cdr.sip_user == "alice"
    assert cdr.account_code == "acme"
    assert cdr.leg == "a"
    assert cdr.switch == "fs-1"


def test_unanswered_legs() -> None:
    busy = document("u-busy", answered=False, billsec="0", cause="USER_BUSY", term="486")
    cancel = document("u-cancel", answered=False, billsec="0", cause="ORIGINATOR_CANCEL", term="487")
    no_answer = document("u-noanswer", answered=False, billsec="0", cause="NO_ANSWER", term="480")
    items = parse(jsonl(busy, cancel, no_answer))
    assert [(c.call_id, c.disposition, c.sip_code, c.duration, c.connect_time) for c in items] == [
        ("u-busy", "busy", 486, 0, None),
        ("u-cancel", "cancelled", 487, 0, None),
        ("u-noanswer", "no_answer", 480, 0, None),
    ]


def test_sip_term_status_decides_when_there_is_no_hangup_cause() -> None:
    doc = document(answered=False, billsec="0", cause="", term="486")
    [cdr] = parse(jsonl(doc))
    assert (cdr.disposition, cdr.sip_code) == ("busy", 486)


def test_sip_code_from_cause_without_sip_term_status() -> None:
    [cdr] = parse(jsonl(document(answered=False, billsec="0", cause="CALL_REJECTED", term=None)))
    assert (cdr.disposition, cdr.sip_code) == ("failed", 603)


def test_duration_from_billmsec_when_billsec_is_absent() -> None:
    [cdr] = parse(jsonl(document(billsec=None, billmsec="60250")))
    assert cdr.duration == 61


def test_duration_from_answer_and_end_when_no_bill_variable() -> None:
    [cdr] = parse(jsonl(document(billsec=None)))
    assert cdr.duration == 61  # 60.25 s answered


def test_epoch_seconds_and_local_stamps_as_fallbacks() -> None:
    doc = document()
    for name in ("start_uepoch", "answer_uepoch", "end_uepoch", "start_epoch"):
        del doc["variables"][name]
    [cdr] = parse(jsonl(doc), tz="Europe/Paris")
    assert cdr.start_time == datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)  # URL-encoded local stamp
    assert cdr.connect_time == datetime(2024, 3, 1, 10, 0, 4, tzinfo=UTC)


def test_b_leg_is_marked() -> None:
    [cdr] = parse(jsonl(document("b-leg-uuid", b_leg=True, sip_gateway_name="carrier-1")))
    assert cdr.leg == "b"
    assert cdr.call_id == "b-leg-uuid"
    assert cdr.trunk == "carrier-1"


def test_url_encoded_values_are_decoded() -> None:
    [cdr] = parse(jsonl(document(caller_id_number="%2B15551230000", uuid="c%2Dd")))
    assert cdr.caller == "+15551230000"
    assert cdr.call_id == "c-d"


def test_single_pretty_printed_document() -> None:
    text = json.dumps(document(), indent=2)
    [cdr] = parse("\n\n" + text)
    assert isinstance(cdr, CanonicalCdr)


def test_json_array_reports_each_element_at_its_line() -> None:
    text = (
        "[\n"
        + json.dumps(document("u1"))
        + ",\n"
        + json.dumps({"no": "variables"})
        + ",\n"
        + json.dumps(document("u3"))
        + "\n]\n"
    )
    items = parse(text)
    assert isinstance(items[0], CanonicalCdr) and items[0].call_id == "u1"
    assert isinstance(items[1], LineError) and items[1].line == 3
    assert 'no "variables" object' in items[1].reason
    assert isinstance(items[2], CanonicalCdr) and items[2].call_id == "u3"


def test_malformed_documents_do_not_stop_the_good_ones() -> None:
    lines = [
        json.dumps(document("u1")),  # 1
        json.dumps(document("u2"))[:120],  # 2 truncated
        "{}",  # 3 replaced below: no uuid
        "",  # 4 blank
        json.dumps(document("u5", billsec="-3")),  # 5 negative billsec
        json.dumps(document("u6", start_uepoch="soon")),  # 6 bad time
        "[1, 2]",  # 7 not an object
        json.dumps(document("u8")) + " trailing",  # 8 text after document
        json.dumps(document("u9")),  # 9
    ]
    doc3 = document("")
    doc3["callflow"][0]["caller_profile"]["uuid"] = ""
    lines[2] = json.dumps(doc3)
    items = parse("\n".join(lines))
    assert [(type(i).__name__, i.line if isinstance(i, LineError) else i.call_id) for i in items] == [
        ("CanonicalCdr", "u1"),
        ("LineError", 2),
        ("LineError", 3),
        ("LineError", 5),
        ("LineError", 6),
        ("LineError", 7),
        ("LineError", 8),
        ("CanonicalCdr", "u9"),
    ]
    reasons = [i.reason for i in items if isinstance(i, LineError)]
    assert reasons[0].startswith("not valid JSON")
    assert "uuid" in reasons[1]
    assert "billsec '-3' is negative" in reasons[2]
    assert "start_uepoch 'soon' is not a number" in reasons[3]
    assert "expected a JSON object, got list" in reasons[4]
    assert "unexpected text after the JSON document" in reasons[5]


def test_callflow_as_a_single_object() -> None:
    doc = document()
    doc["callflow"] = doc["callflow"][0]
    [cdr] = parse(jsonl(doc))
    assert cdr.callee == "0044207946000"


def test_unclosed_array_keeps_the_complete_elements() -> None:
    text = "[\n" + json.dumps(document("u1")) + ",\n" + json.dumps(document("u2"))
    first, second, error = parse(text)
    assert (first.call_id, second.call_id) == ("u1", "u2")
    assert isinstance(error, LineError) and error.line == 1
    assert "not closed" in error.reason


def test_documents_written_one_after_the_other() -> None:
    # What `cat *.cdr.json` gives: compact documents, not separated by new lines.
    text = json.dumps(document("u1")) + json.dumps(document("u2")) + "\n" + json.dumps(document("u3"))
    items = parse(text)
    assert [c.call_id for c in items] == ["u1", "u2", "u3"]


def test_values_no_switch_should_send_are_refused_per_document() -> None:
    """An integer of 5,000 digits (beyond int()'s text limit), billsec beyond 64 bits, a control
    character: each document refused with its line, the next one read (issue 12 item 6)."""
    huge = json.dumps(document("u1")).replace('"uuid": "u1"', '"uuid": "u1", "n": ' + "9" * 5000)
    items = parse(
        "\n".join(
            [
                huge,
                json.dumps(document("u2", billsec=str(10**20))),
                json.dumps(document("u3", caller_id_number="12%0145")),
                json.dumps(document("u4")),
            ]
        )
    )
    assert [(type(i).__name__, i.line if isinstance(i, LineError) else i.call_id) for i in items] == [
        ("LineError", 1),
        ("LineError", 2),
        ("LineError", 3),
        ("CanonicalCdr", "u4"),
    ]
    assert "not valid JSON" in items[0].reason and "digits" in items[0].reason
    assert "billsec" in items[1].reason and "week" in items[1].reason
    assert "caller contains the control character U+0001" in items[2].reason
