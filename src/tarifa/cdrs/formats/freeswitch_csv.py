"""FreeSWITCH ``mod_cdr_csv`` (``log/cdr-csv/Master.csv``) -> CanonicalCdr.

The default template (``default-template`` is ``example`` in the shipped ``cdr_csv.conf.xml``)
writes one quoted line per call leg, no header::

    caller_id_name, caller_id_number, destination_number, context, start_stamp, answer_stamp,
    end_stamp, duration, billsec, hangup_cause, uuid, bleg_uuid, accountcode, read_codec, write_codec

15 columns; the 13 columns of the module's built-in fallback template (the same without the
codecs) are accepted too. Stamps are ``YYYY-MM-DD HH:MM:SS`` in the switch's local time
(``tz``); ``answer_stamp`` is empty for an unanswered leg.

The hangup-cause tables here are shared with :mod:`tarifa.cdrs.formats.freeswitch_json`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo
from typing import Final

from tarifa.cdrs.formats.tarifa import (
    Item,
    RecordError,
    build,
    ceil_seconds,
    csv_records,
    load_zone,
    optional_time,
    parse_time,
)
from tarifa.core.cdr import CanonicalCdr, Disposition, LineError

COLUMNS: Final = (
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
    "read_codec",
    "write_codec",
)

# Hangup cause of a leg that was never answered -> disposition (anything else is "failed").
CAUSE_DISPOSITIONS: Final = {
    "USER_BUSY": Disposition.BUSY,
    "NO_ANSWER": Disposition.NO_ANSWER,
    "NO_USER_RESPONSE": Disposition.NO_ANSWER,
    "ORIGINATOR_CANCEL": Disposition.CANCELLED,
    "LOSE_RACE": Disposition.CANCELLED,
}

# FreeSWITCH's hangup cause -> SIP status (mod_sofia hangup_cause_to_sip, per the "Hangup Cause
# Code Table" of the FreeSWITCH documentation). Causes without a documented SIP equivalent
# (FreeSWITCH sends its catch-all 480 for them) give no sip_code.
CAUSE_SIP_CODES: Final = {
    "UNALLOCATED_NUMBER": 404,
    "NO_ROUTE_TRANSIT_NET": 404,
    "NO_ROUTE_DESTINATION": 404,
    "USER_BUSY": 486,
    "NO_USER_RESPONSE": 408,
    "NO_ANSWER": 480,
    "SUBSCRIBER_ABSENT": 480,
    "CALL_REJECTED": 603,
    "NUMBER_CHANGED": 410,
    "REDIRECTION_TO_NEW_DESTINATION": 410,
    "EXCHANGE_ROUTING_ERROR": 483,
    "DESTINATION_OUT_OF_ORDER": 502,
    "INVALID_NUMBER_FORMAT": 484,
    "FACILITY_REJECTED": 501,
    "NORMAL_UNSPECIFIED": 480,
    "NORMAL_CIRCUIT_CONGESTION": 503,
    "NETWORK_OUT_OF_ORDER": 503,
    "NORMAL_TEMPORARY_FAILURE": 503,
    "SWITCH_CONGESTION": 503,
    "ORIGINATOR_CANCEL": 487,
}


def outcome(answered: bool, hangup_cause: str) -> tuple[str, int | None]:
    """(disposition, sip_code) of a leg: answered legs are "answered"/200 whatever the cause."""
    if answered:
        return Disposition.ANSWERED, 200
    cause = hangup_cause.strip().upper()
    return CAUSE_DISPOSITIONS.get(cause, Disposition.FAILED), CAUSE_SIP_CODES.get(cause)


def parse(text: str, *, switch: str, tz: str = "UTC") -> Iterator[CanonicalCdr | LineError]:
    """cdr-csv Master.csv text -> one CanonicalCdr or LineError per non-blank line, in input order."""
    return _parse(text, switch, load_zone(tz))


def _parse(text: str, switch: str, zone: tzinfo) -> Iterator[Item]:
    return csv_records(text, lambda row: _record(row, switch, zone))


def _record(row: list[str], switch: str, zone: tzinfo) -> CanonicalCdr:
    if len(row) not in (13, 15):
        raise RecordError(f"expected 15 columns (or the 13 of the built-in template), got {len(row)}")
    cells = dict(zip(COLUMNS, (cell.strip() for cell in row), strict=False))
    call_id = cells["uuid"]
    if not call_id:
        raise RecordError("uuid (the call id) is empty")
    callee = cells["destination_number"]
    if not callee:
        raise RecordError("destination_number is empty")
    start = parse_time(cells["start_stamp"], zone, "start_stamp")
    answer = optional_time(cells["answer_stamp"], zone, "answer_stamp", not_before=start)
    end = optional_time(cells["end_stamp"], zone, "end_stamp", not_before=answer or start)
    billsec = ceil_seconds(cells["billsec"], "billsec")
    disposition, sip_code = outcome(billsec > 0 or answer is not None, cells["hangup_cause"])
    return build(
        call_id=call_id,
        callee=callee,
        start_time=start,
        duration=billsec,
        switch=switch,
        caller=cells["caller_id_number"],
        connect_time=answer,
        end_time=end,
        disposition=disposition,
        sip_code=sip_code,
        account_code=cells["accountcode"],
    )
