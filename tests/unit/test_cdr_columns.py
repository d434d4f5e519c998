"""The vectorised canonical CSV reader gives exactly the reference parser's records and refusals."""

from __future__ import annotations

import random

import pytest

from tarifa.cdrs.columns import from_cdrs, read_canonical_csv, to_cdrs
from tarifa.cdrs.formats.tarifa import parse
from tarifa.core.cdr import CanonicalCdr, LineError

CELLS = {
    "call_id": ["c1", "", "  spaced  ", "x" * 300, "id-\u00e9"],
    "callee": ["441234567890", "+1 (201) 555-0123", "", "0044 20", "abc"],
    "start_time": [
        "2026-03-01T10:00:00Z",
        "2026-03-01 10:00:00",
        "2026-03-01T10:00:00.5+02:00",
        "2026-03-01T10:00:00.123456-05:30",
        "2026-02-30T10:00:00Z",
        "2026-03-01",
        "2026-03-01T25:00:00Z",
        "2026-03-01T10:00:60Z",
        "yesterday",
        "",
        "2026-03-01T10:00:00+0200",
        "2026-03-01T10:00:00.1234567Z",
        "2026-03-01T10:00:00+24:00",
    ],
    "connect_time": ["", "2026-03-01T10:00:05Z", "2026-03-01T09:00:00Z", "2026-03-01 10:00:07", "bad"],
    "end_time": ["", "2026-03-01T10:05:00Z", "2026-03-01T09:59:00Z"],
    "duration": ["60", "0", "12.001", "12.000", "12.", "-5", "", "1e3", "abc", "3600", " 7 "],
    "disposition": ["", "answered", "BUSY", "No_Answer", "weird"],
    "direction": ["", "outbound", "Inbound", "sideways"],
    "sip_code": ["", "200", "0200", "99", "700", "abc", "486"],
    "source_ip": ["", "10.0.0.1", "010.0.0.1", "256.1.1.1", "2001:db8::1", "2001:0db8:0:0::1", "host"],
    "sip_user": ["", "u1", " u2 "],
    "leg": ["", "a", "b"],
    "switch": ["", "sw2"],
    "extension": ["", "100"],
    "connection": ["", "carrier-a"],
}


# How many of the first values of each list are usually fine (picked most of the time).
GOOD = {
    "disposition": 4,
    "direction": 3,
    "call_id": 3,
    "callee": 2,
    "start_time": 4,
    "connect_time": 2,
    "end_time": 2,
    "duration": 5,
    "sip_code": 3,
    "source_ip": 2,
}


def _cell(rng: random.Random, name: str) -> str:
    values = CELLS[name]
    if rng.random() < 0.93:
        return rng.choice(values[: GOOD.get(name, len(values))])
    return rng.choice(values)


def _line(rng: random.Random, names: list[str]) -> str:
    cells = [_cell(rng, n) for n in names]
    roll = rng.random()
    if roll < 0.03:
        cells.append("extra")
    elif roll < 0.06:
        cells = cells[:-1]
    elif roll < 0.09:
        cells[0] = f'"{cells[0]}"'
    elif roll < 0.11:
        return "   "
    elif roll < 0.12:
        cells[-1] += "\t"
    return ",".join(cells)


def _reference(text: str, switch: str, tz: str) -> tuple[list[tuple[int, CanonicalCdr]], list[LineError]]:
    items = list(parse(text, switch=switch, tz=tz))
    errors = [i for i in items if isinstance(i, LineError)]
    cdrs = [i for i in items if isinstance(i, CanonicalCdr)]
    return cdrs, errors


def _columns(text: str, switch: str, tz: str, chunk: int) -> tuple[list[CanonicalCdr], list[LineError], list[int]]:
    cdrs, errors, lines = [], [], []
    for frame, refused in read_canonical_csv(text, switch=switch, tz=tz, chunk_lines=chunk):
        cdrs.extend(to_cdrs(frame))
        lines.extend(frame["line"].to_list())
        errors.extend(refused)
    return cdrs, errors, lines


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris"])
def test_same_records_and_refusals_as_the_reference(seed: int, tz: str) -> None:
    rng = random.Random(seed)
    names = list(CELLS)
    rng.shuffle(names)
    names = names[: rng.randint(4, len(names))]
    for required in ("call_id", "callee", "start_time", "duration"):
        if required not in names:
            names.append(required)
    text = ",".join(names) + "\n" + "\n".join(_line(rng, names) for _ in range(3000)) + "\n"
    ref_cdrs, ref_errors = _reference(text, "sw", tz)
    cdrs, errors, lines = _columns(text, "sw", tz, chunk=700)
    assert cdrs == ref_cdrs
    assert [(e.line, e.reason, e.text) for e in sorted(errors, key=lambda e: e.line)] == [
        (e.line, e.reason, e.text) for e in ref_errors
    ]
    assert lines == sorted(lines)
    assert len(ref_cdrs) > 200 and len(ref_errors) > 200  # both kinds of line are exercised


def test_bad_header_is_the_only_refusal() -> None:
    chunks = list(read_canonical_csv("call_id,callee,bogus\n1,2,3\n", switch="s"))
    assert len(chunks) == 1
    frame, errors = chunks[0]
    assert len(frame) == 0 and len(errors) == 1 and errors[0].line == 1
    assert "unknown column 'bogus'" in errors[0].reason


def test_frame_round_trip_keeps_every_field() -> None:
    text = (
        "call_id,callee,start_time,connect_time,end_time,duration,sip_code,source_ip,leg,direction\n"
        "k1,+441234,2026-03-01T10:00:00.25Z,2026-03-01T10:00:01Z,2026-03-01T10:01:00Z,59.5,200,192.0.2.1,b,inbound\n"
    )
    ref, _ = _reference(text, "sw", "UTC")
    assert to_cdrs(from_cdrs(ref)) == ref
    cdrs, _, _ = _columns(text, "sw", "UTC", chunk=10)
    assert cdrs == ref and cdrs[0].duration == 60 and cdrs[0].start_time.microsecond == 250000
