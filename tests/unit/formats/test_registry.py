"""The format registry: names, dispatch, and format guessing."""

from __future__ import annotations

import json

import pytest

from tarifa.cdrs.formats import asterisk, freeswitch_csv, freeswitch_json, kamailio, registry, tarifa
from tarifa.core.cdr import CanonicalCdr

ASTERISK = (
    '"","1001","0044207946000","from-internal","""Alice"" <1001>","SIP/alice-0000000a","",'
    '"Dial","SIP/provider/0044207946000","2024-03-01 10:00:00","2024-03-01 10:00:05",'
    '"2024-03-01 10:01:07",67,62,"ANSWERED","DOCUMENTATION"\n'
)
FREESWITCH = (
    '"Alice","1001","0044207946000","default","2024-03-01 10:00:00","2024-03-01 10:00:04",'
    '"2024-03-01 10:01:04","64","60","NORMAL_CLEARING","a5c9f6c0-e752-11e3-8bfb-65b6c3cdac7d","",'
    '"1001","PCMA","PCMA"\n'
)
KAMAILIO = (
    "Mar  1 10:00:00 sip1 kamailio[1]: NOTICE: acc [acc.c:279]: acc_log_request(): ACC: transaction "
    "answered: timestamp=1709287200;method=INVITE;from_tag=a;to_tag=b;call_id=c;code=486;reason=Busy Here;"
    "dst_user=100\n"
)
TARIFA = "call_id,callee,start_time,duration\nc-1,100,2024-03-01T10:00:00Z,5\n"
TARIFA_JSON = (
    json.dumps({"call_id": "c-1", "callee": "100", "start_time": "2024-03-01T10:00:00Z", "duration": 5}) + "\n"
)
FREESWITCH_JSON = (
    json.dumps(
        {
            "variables": {
                "uuid": "u1",
                "sip_to_user": "100",
                "start_epoch": "1709287200",
                "billsec": "0",
                "hangup_cause": "NO_ANSWER",
            }
        }
    )
    + "\n"
)


def test_formats_by_name() -> None:
    assert {
        "asterisk": asterisk.parse,
        "freeswitch-csv": freeswitch_csv.parse,
        "freeswitch-json": freeswitch_json.parse,
        "kamailio": kamailio.parse,
        "tarifa": tarifa.parse,
        "tarifa-json": tarifa.parse_json,
    } == registry.FORMATS


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("asterisk", ASTERISK),
        ("freeswitch-csv", FREESWITCH),
        ("freeswitch-json", FREESWITCH_JSON),
        ("kamailio", KAMAILIO),
        ("tarifa", TARIFA),
        ("tarifa-json", TARIFA_JSON),
    ],
)
def test_parse_dispatches_and_detect_recognises(name: str, text: str) -> None:
    [cdr] = registry.parse(name, text, switch="sw", tz="Europe/Paris")
    assert isinstance(cdr, CanonicalCdr)
    assert cdr.switch == "sw"
    assert registry.detect("Master.csv", text) == name


def test_unknown_format_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError) as info:
        registry.parse("opensips", "", switch="sw")
    message = str(info.value)
    assert "unknown CDR format 'opensips'" in message
    assert "asterisk, freeswitch-csv, freeswitch-json, kamailio, tarifa, tarifa-json" in message


def test_unknown_zone_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        registry.parse("tarifa", TARIFA, switch="sw", tz="Nowhere/City")


def test_detect_more_shapes() -> None:
    assert registry.detect("cdr.json", json.dumps({"variables": {"uuid": "u"}}, indent=2)) == "freeswitch-json"
    assert registry.detect("cdrs.json", "[" + FREESWITCH_JSON.strip() + "]") == "freeswitch-json"
    assert registry.detect("acc.csv", "id,method,from_tag,to_tag,callid,sip_code,sip_reason,time\n") == "kamailio"
    assert registry.detect("empty.csv", "") is None
    assert registry.detect("notes.txt", "hello, world\n") is None
