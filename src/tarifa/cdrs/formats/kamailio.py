"""Kamailio ``acc`` module records -> CanonicalCdr (one per call, from INVITE and BYE records).

``acc`` accounts SIP *transactions*, not calls. Two spellings are read:

* syslog (``log_flag``/``log_missed_flag``), one record a line, anything before ``ACC:`` (the
  syslog prefix) ignored; lines without ``ACC:`` are skipped::

    ACC: transaction answered: timestamp=1709287200;method=INVITE;from_tag=a1;to_tag=b2;
    call_id=c3@host;code=200;reason=OK;src_user=alice;src_ip=192.0.2.10;dst_user=441234567890

* CSV with a header, as exported from the ``acc`` table (``db_flag``): columns ``method``,
  ``from_tag``, ``to_tag``, ``callid``, ``sip_code``, ``sip_reason``, ``time`` (DATETIME, read in
  ``tz``) and the ``db_extra`` columns. ``call_id``, ``code``, ``reason`` and ``timestamp`` (Unix
  seconds) are accepted as the same columns.

Sub-second times: ``time_attr`` (``time_mode=2``, seconds.milliseconds) or ``time_exten``
(``time_mode=1``, microseconds) are used when present.

Extra attributes (``log_extra``/``db_extra``) give the call's parties: ``src_user`` (caller and
SIP user), ``dst_user`` or else ``dst_ouser`` (callee), ``src_ip`` (source IP); an extra named
like a canonical field (``caller``, ``callee``, ``sip_user``, ``source_ip``, ``trunk``, ``did``,
``extension``, ``account_code``, ``connection``) is used as is and wins.

Pairing rule (the records of one Call-ID, in input order):

1. The first INVITE with a 2xx code is the answer. The next BYE (any code) after it ends the
   call: one answered CDR, start = answer = INVITE time, end = BYE time, duration = BYE time -
   INVITE time rounded up. Later INVITE records of the call (re-INVITEs) and later BYEs are
   ignored. No BYE after it: ``LineError("no BYE for call ...")`` at the INVITE's line.
2. A call without a 2xx INVITE whose INVITE records failed (code >= 300) is one CDR from the
   *last* of them (the final answer to the caller): busy (486, 600), cancelled (487), no_answer
   (408, 480) or failed, duration 0, at that record's line.
3. A BYE of a Call-ID that has no INVITE record in the input is a LineError at its line.
4. Records of other methods (ACK, CANCEL, REGISTER, ...) and provisional (1xx) INVITE records
   produce nothing.

Items come out in the order of the lines they are reported at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from tarifa.cdrs.formats.tarifa import (
    Item,
    RecordError,
    build,
    csv_rows,
    from_epoch,
    header_problem,
    load_zone,
    parse_ip,
    parse_time,
    physical_lines,
)
from tarifa.core.cdr import CanonicalCdr, Disposition, LineError

FAILED_DISPOSITIONS: Final = {
    486: Disposition.BUSY,
    600: Disposition.BUSY,
    487: Disposition.CANCELLED,
    408: Disposition.NO_ANSWER,
    480: Disposition.NO_ANSWER,
}

# CSV header aliases -> the syslog attribute names used below.
COLUMN_ALIASES: Final = {"callid": "call_id", "sip_code": "code", "sip_reason": "reason"}
_CORE_COLUMNS: Final = (
    "id",
    "method",
    "from_tag",
    "to_tag",
    "callid",
    "call_id",
    "sip_code",
    "code",
    "sip_reason",
    "reason",
    "time",
    "timestamp",
    "time_attr",
    "time_exten",
)

_MARKER: Final = "ACC:"
_SECONDS_FRACTION: Final = re.compile(r"\d+\.\d+")


@dataclass
class _Record:
    line: int
    raw: str
    method: str
    call_id: str
    code: int
    reason: str
    time: datetime
    attrs: dict[str, str] = field(default_factory=dict)


def parse(text: str, *, switch: str, tz: str = "UTC") -> Iterator[CanonicalCdr | LineError]:
    """acc syslog lines or an acc-table CSV export -> CanonicalCdr / LineError, by line."""
    return _parse(text, switch, load_zone(tz))


def _parse(text: str, switch: str, zone: tzinfo) -> Iterator[Item]:
    records: list[_Record] = []
    out: list[tuple[int, Item]] = []
    reader = _csv_records if _is_csv(text) else _syslog_records
    for item in reader(text, zone):
        if isinstance(item, LineError):
            out.append((item.line, item))
        else:
            records.append(item)
    out.extend(_pair(records, switch))
    out.sort(key=lambda pair: pair[0])
    return iter([item for _, item in out])


# --------------------------------------------------------------------------------------------
# Reading records
# --------------------------------------------------------------------------------------------


def _is_csv(text: str) -> bool:
    """True when the first non-blank line is a CSV header with method and call id columns."""
    for _, row, _ in csv_rows(text):
        if isinstance(row, RecordError):
            return False
        names = {cell.strip().lower() for cell in row}
        return "method" in names and bool(names & {"callid", "call_id"})
    return False


def _attributes(payload: str) -> dict[str, str]:
    """``a=1;b=2`` -> {"a": "1", "b": "2"}; a piece without ``=`` belongs to the previous value."""
    attrs: dict[str, str] = {}
    last = None
    for piece in payload.rstrip("\r\n").split(";"):
        name, sep, value = piece.partition("=")
        if sep and name.strip():
            last = name.strip().lower()
            attrs[last] = value
        elif last is not None:
            attrs[last] += ";" + piece
    return attrs


def _syslog_records(text: str, zone: tzinfo) -> Iterator[_Record | LineError]:
    seen = False
    content = False
    for number, line in enumerate(physical_lines(text), start=1):
        raw = line.rstrip("\r\n")
        content = content or bool(raw.strip())
        at = raw.find(_MARKER)
        if at < 0:
            continue
        seen = True
        try:
            start = raw.find("timestamp=", at)
            if start < 0:
                raise RecordError("ACC record without timestamp=")
            attrs = _attributes(raw[start:])
            seconds = attrs.get("timestamp", "").strip()
            if not seconds.isdigit():
                raise RecordError(f"timestamp {seconds!r} is not a Unix time in seconds")
            base = from_epoch(seconds, "timestamp") or datetime(1970, 1, 1, tzinfo=UTC)
            yield _make(number, raw, attrs, _precise(base, attrs))
        except RecordError as exc:
            yield LineError(number, str(exc), raw)
    if content and not seen:
        yield LineError(1, "no Kamailio acc record (a line with 'ACC: ... timestamp=...;method=...') in this text")


def _csv_records(text: str, zone: tzinfo) -> Iterator[_Record | LineError]:
    rows = csv_rows(text)
    for number, row, raw in rows:
        if isinstance(row, RecordError):
            yield LineError(number, f"bad header: {row}", raw)
            return
        names = [cell.strip().lower() for cell in row]
        # Any db_extra column is welcome: only empty, repeated or missing columns are refused.
        problem = header_problem(names, tuple(dict.fromkeys([*_CORE_COLUMNS, *names])), ("method",))
        if problem is None and not {"time", "timestamp"} & set(names):
            problem = "bad header: missing required column 'time' (or 'timestamp')"
        if problem is None and not {"sip_code", "code"} & set(names):
            problem = "bad header: missing required column 'sip_code' (or 'code')"
        if problem:
            yield LineError(number, problem, raw)
            return
        break
    else:
        return
    for number, row, raw in rows:
        try:
            if isinstance(row, RecordError):
                raise row
            if len(row) != len(names):
                raise RecordError(f"expected {len(names)} columns as in the header, got {len(row)}")
            attrs = {COLUMN_ALIASES.get(name, name): cell for name, cell in zip(names, row, strict=True)}
            if "timestamp" in attrs:
                seconds = attrs["timestamp"].strip()
                if not seconds.isdigit():
                    raise RecordError(f"timestamp {seconds!r} is not a Unix time in seconds")
                base = from_epoch(seconds, "timestamp") or datetime(1970, 1, 1, tzinfo=UTC)
            else:
                base = parse_time(attrs["time"], zone, "time")
            yield _make(number, raw, attrs, _precise(base, attrs))
        except RecordError as exc:
            yield LineError(number, str(exc), raw)


def _precise(base: datetime, attrs: dict[str, str]) -> datetime:
    """The record time refined by ``time_attr`` (``time_mode=2``: seconds.milliseconds) or
    ``time_exten`` (``time_mode=1``: microseconds) when they are present and well formed."""
    attr = attrs.get("time_attr", "").strip()
    if _SECONDS_FRACTION.fullmatch(attr):
        exact = from_epoch(attr, "time_attr")
        if exact is not None and int(exact.timestamp()) == int(base.timestamp()):
            return exact
    exten = attrs.get("time_exten", "").strip()
    if exten.isdigit() and int(exten) < 1_000_000:
        return base.replace(microsecond=0) + timedelta(microseconds=int(exten))
    return base


def _make(number: int, raw: str, attrs: dict[str, str], moment: datetime) -> _Record:
    method = attrs.get("method", "").strip().upper()
    if not method:
        raise RecordError("method is missing")
    call_id = attrs.get("call_id", "").strip()
    if not call_id:
        raise RecordError("call_id is missing")
    code_text = attrs.get("code", "").strip()
    if not code_text.isdigit():
        raise RecordError(f"code {code_text!r} is not a SIP status code")
    return _Record(number, raw, method, call_id, int(code_text), attrs.get("reason", "").strip(), moment, attrs)


# --------------------------------------------------------------------------------------------
# Pairing INVITE and BYE
# --------------------------------------------------------------------------------------------


def _pair(records: list[_Record], switch: str) -> Iterator[tuple[int, Item]]:
    by_call: dict[str, list[_Record]] = {}
    for record in records:
        if record.method in ("INVITE", "BYE"):
            by_call.setdefault(record.call_id, []).append(record)
    for call_id, group in by_call.items():
        invites = [r for r in group if r.method == "INVITE"]
        answer = next((r for r in invites if 200 <= r.code < 300), None)
        if answer is not None:
            bye = next((r for r in group if r.method == "BYE" and r.line > answer.line), None)
            if bye is None:
                yield answer.line, LineError(answer.line, f"no BYE for call {call_id!r} in this input", answer.raw)
            else:
                yield answer.line, _cdr(answer, bye, switch)
            continue
        failures = [r for r in invites if r.code >= 300]
        if failures:
            yield failures[-1].line, _cdr(failures[-1], None, switch)
        elif not invites:
            for bye in group:
                yield bye.line, LineError(bye.line, f"BYE for call {call_id!r} has no INVITE in this input", bye.raw)


def _party(attrs: dict[str, str], canonical: str, *aliases: str) -> str:
    for name in (canonical, *aliases):
        value = attrs.get(name, "").strip()
        if value:
            return value
    return ""


def _cdr(invite: _Record, bye: _Record | None, switch: str) -> Item:
    attrs = invite.attrs
    try:
        callee = _party(attrs, "callee", "dst_user", "dst_ouser")
        if not callee:
            raise RecordError("no callee: add dst_user=$rU (or callee=...) to the acc log_extra/db_extra")
        common = dict(
            call_id=invite.call_id,
            callee=callee,
            switch=switch,
            caller=_party(attrs, "caller", "src_user"),
            source_ip=parse_ip(_party(attrs, "source_ip", "src_ip"), "src_ip"),
            sip_user=_party(attrs, "sip_user", "src_user"),
            trunk=_party(attrs, "trunk"),
            did=_party(attrs, "did"),
            extension=_party(attrs, "extension"),
            account_code=_party(attrs, "account_code", "accountcode"),
            connection=_party(attrs, "connection"),
            sip_code=invite.code,
        )
        if bye is None:
            return build(
                start_time=invite.time,
                end_time=invite.time,
                duration=0,
                disposition=FAILED_DISPOSITIONS.get(invite.code, Disposition.FAILED),
                **common,
            )
        if bye.time < invite.time:
            raise RecordError(f"the BYE of call {invite.call_id!r} (line {bye.line}) is before its INVITE answer")
        micros = (bye.time - invite.time) // timedelta(microseconds=1)
        return build(
            start_time=invite.time,
            connect_time=invite.time,
            end_time=bye.time,
            duration=-(-micros // 1_000_000),
            disposition=Disposition.ANSWERED,
            **common,
        )
    except RecordError as exc:
        return LineError(invite.line, str(exc), invite.raw)
