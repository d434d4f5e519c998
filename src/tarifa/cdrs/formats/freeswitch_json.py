"""FreeSWITCH ``mod_json_cdr`` documents -> CanonicalCdr.

``mod_json_cdr`` writes (``log-dir``) or posts (``url``) one JSON document per call leg::

    {"core-uuid": ..., "channel_data": {...}, "variables": {...}, "app_log": {...},
     "callflow": {...} or [{...}, ...]}

Each ``callflow`` entry has a ``caller_profile`` (``caller_id_number``, ``destination_number``,
``uuid``, and ``originator`` on a B leg) and ``times`` (microseconds). With the default
``encode-values=true`` every value in ``variables`` is URL-encoded; values are decoded here
either way.

Accepted text: JSON Lines (one document a line), one document (pretty-printed or not), several
documents one after the other, or a JSON array of documents. Each document is one record; its
line is the line where it starts.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Final
from urllib.parse import unquote

from tarifa.cdrs.formats.freeswitch_csv import outcome
from tarifa.cdrs.formats.tarifa import (
    Item,
    RecordError,
    build,
    ceil_seconds,
    decimal_of,
    from_epoch,
    load_zone,
    optional_time,
    parse_ip,
    physical_lines,
    snippet,
)
from tarifa.core.cdr import CanonicalCdr, Disposition, LineError

# SIP status of an unanswered leg whose hangup_cause is missing -> disposition.
SIP_DISPOSITIONS: Final = {
    486: Disposition.BUSY,
    600: Disposition.BUSY,
    487: Disposition.CANCELLED,
    408: Disposition.NO_ANSWER,
    480: Disposition.NO_ANSWER,
}

_DECODER: Final = json.JSONDecoder(parse_float=Decimal)
_MICROSECOND: Final = timedelta(microseconds=1)
_WHITESPACE: Final = " \t\r\n"


def parse(text: str, *, switch: str, tz: str = "UTC") -> Iterator[CanonicalCdr | LineError]:
    """mod_json_cdr documents -> one CanonicalCdr or LineError per document, in input order."""
    return _parse(text, switch, load_zone(tz))


def _parse(text: str, switch: str, zone: tzinfo) -> Iterator[Item]:
    for number, document, raw in documents(text):
        try:
            if isinstance(document, RecordError):
                raise document
            yield _record(document, switch, zone)
        except RecordError as exc:
            yield LineError(number, str(exc), snippet(raw))


# --------------------------------------------------------------------------------------------
# Splitting the text into documents
# --------------------------------------------------------------------------------------------


class _Text:
    """The input with its physical line starts, to turn an offset into a line number."""

    def __init__(self, text: str) -> None:
        lines = physical_lines(text)
        self.body = "".join(lines)
        self.starts = [0]
        for line in lines[:-1]:
            self.starts.append(self.starts[-1] + len(line))

    def line_of(self, pos: int) -> int:
        return bisect_right(self.starts, pos)

    def line_end(self, pos: int) -> int:
        index = self.line_of(pos)
        return self.starts[index] if index < len(self.starts) else len(self.body)

    def skip_space(self, pos: int) -> int:
        while pos < len(self.body) and self.body[pos] in _WHITESPACE:
            pos += 1
        return pos

    def next_document(self, pos: int) -> int:
        """Start of the first later line that opens a JSON object or array (resynchronising)."""
        for start in self.starts[self.line_of(pos) :]:
            first = self.skip_space(start)
            if first < self.line_end(start) and self.body[first] in "{[":
                return first
        return len(self.body)

    def line_text(self, pos: int) -> str:
        return self.body[self.starts[self.line_of(pos) - 1] : self.line_end(pos)].rstrip("\r\n")


def documents(text: str) -> Iterator[tuple[int, Any, str]]:
    """(line, decoded document or RecordError, document text) for every JSON document."""
    source = _Text(text)
    pos = source.skip_space(0)
    if pos < len(source.body) and source.body[pos] == "[":
        yield from _array(source, pos)
    else:
        yield from _sequence(source, pos)


def _decode(source: _Text, pos: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(source.body, pos)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise RecordError("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4,300 digits (int()'s limit on text)
        raise RecordError(f"not valid JSON: {str(exc)[:120]}") from None


def _sequence(source: _Text, pos: int) -> Iterator[tuple[int, Any, str]]:
    body = source.body
    while (pos := source.skip_space(pos)) < len(body):
        line = source.line_of(pos)
        try:
            document, end = _decode(source, pos)
        except RecordError as exc:
            yield line, exc, source.line_text(pos)
            pos = source.next_document(pos)
            continue
        rest_end = source.line_end(end - 1)
        rest = body[end:rest_end].strip()
        if rest and rest[0] not in "{[":  # mod_json_cdr files end without a newline: `cat` joins them
            yield line, RecordError("unexpected text after the JSON document on the same line"), body[pos:rest_end]
            pos = source.next_document(end - 1)
            continue
        yield line, document, body[pos:end]
        pos = end


def _array(source: _Text, pos: int) -> Iterator[tuple[int, Any, str]]:
    body = source.body
    opening = pos
    pos += 1
    while True:
        pos = source.skip_space(pos)
        if pos >= len(body):
            error = RecordError("the JSON array is not closed with ']'")
            yield source.line_of(opening), error, source.line_text(opening)
            return
        if body[pos] == "]":
            rest = source.skip_space(pos + 1)
            if rest < len(body):
                yield source.line_of(rest), RecordError("unexpected text after the JSON array"), source.line_text(rest)
            return
        line = source.line_of(pos)
        try:
            document, end = _decode(source, pos)
        except RecordError as exc:
            yield line, exc, source.line_text(pos)
            pos = source.next_document(pos)
            continue
        yield line, document, body[pos:end]
        pos = source.skip_space(end)
        if pos < len(body) and body[pos] == ",":
            pos += 1
        elif pos < len(body) and body[pos] != "]":
            yield source.line_of(pos), RecordError("expected ',' or ']' after an array element"), source.line_text(pos)
            pos = source.next_document(pos)


# --------------------------------------------------------------------------------------------
# One document -> CanonicalCdr
# --------------------------------------------------------------------------------------------


def _value(value: object) -> str:
    """A JSON value as text, URL-decoded (``encode-values``); objects and arrays are ""."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return unquote(value).strip()
    return str(value)


def _caller_profiles(callflow: object) -> list[dict[str, Any]]:
    """The caller profiles of the callflow, newest first (as FreeSWITCH lists them)."""
    entries = callflow if isinstance(callflow, list) else [callflow]
    profiles = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("caller_profile"), dict):
            profiles.append(entry["caller_profile"])
    return profiles


def _moment(var: Callable[[str], str], event: str, zone: tzinfo, not_before: datetime | None) -> datetime | None:
    """``<event>_uepoch``, else ``<event>_epoch``, else ``<event>_stamp`` (local time); 0 is None."""
    if value := var(f"{event}_uepoch"):
        return from_epoch(value, f"{event}_uepoch", scale=1_000_000)
    if value := var(f"{event}_epoch"):
        return from_epoch(value, f"{event}_epoch")
    return optional_time(var(f"{event}_stamp"), zone, f"{event}_stamp", not_before=not_before)


def _billable(var: Callable[[str], str], answer: datetime | None, end: datetime | None) -> int:
    """billsec; without it billmsec, billusec, or end - answer; rounded up to whole seconds."""
    if value := var("billsec"):
        return ceil_seconds(value, "billsec")
    if value := var("billmsec"):
        return ceil_seconds(decimal_of(value, "billmsec") / 1000, "billmsec")
    if value := var("billusec"):
        return ceil_seconds(decimal_of(value, "billusec") / 1_000_000, "billusec")
    if answer is not None and end is not None:
        micros = (end - answer) // _MICROSECOND
        return max(0, -(-micros // 1_000_000))
    return 0


def _record(document: Any, switch: str, zone: tzinfo) -> CanonicalCdr:
    if not isinstance(document, dict):
        raise RecordError(f"expected a JSON object, got {type(document).__name__}")
    variables = document.get("variables")
    if not isinstance(variables, dict):
        raise RecordError('no "variables" object: not a mod_json_cdr document')
    profiles = _caller_profiles(document.get("callflow"))
    first_profile = profiles[-1] if profiles else {}

    def var(name: str) -> str:
        return _value(variables.get(name))

    def profile(name: str) -> str:
        return _value(first_profile.get(name))

    call_id = var("uuid") or profile("uuid")
    if not call_id:
        raise RecordError("variables.uuid (the call id) is missing")
    callee = profile("destination_number") or var("destination_number") or var("sip_to_user") or var("sip_req_user")
    if not callee:
        raise RecordError("no destination_number, sip_to_user or sip_req_user")
    start = _moment(var, "start", zone, None)
    if start is None:
        raise RecordError("no start time (start_uepoch, start_epoch or start_stamp)")
    answer = _moment(var, "answer", zone, start)
    end = _moment(var, "end", zone, answer or start)
    duration = _billable(var, answer, end)
    answered = duration > 0 or answer is not None

    cause = var("hangup_cause")
    disposition, sip_code = outcome(answered, cause)
    status = var("sip_term_status")
    if status.isdigit() and 100 <= int(status) <= 699:
        sip_code = int(status)
        if not answered and not cause:
            disposition = SIP_DISPOSITIONS.get(sip_code, Disposition.FAILED)

    return build(
        call_id=call_id,
        callee=callee,
        start_time=start,
        duration=duration,
        switch=switch,
        leg="b" if any("originator" in p for p in profiles) else "a",
        caller=var("caller_id_number") or profile("caller_id_number") or var("sip_from_user"),
        connect_time=answer,
        end_time=end,
        disposition=disposition,
        sip_code=sip_code,
        source_ip=parse_ip(var("sip_network_ip") or var("sip_received_ip"), "sip_network_ip"),
        sip_user=var("sip_auth_username") or var("sip_from_user"),
        trunk=var("sip_gateway_name"),
        account_code=var("accountcode"),
    )
