"""The NPA-NXX -> LATA/state table of LATA-based billing: its all-or-nothing import.

The rules are :mod:`tarifa.core.origination`; this module reads and writes the database only
(short-call penalties, which read CDRs and post to the ledger, are :mod:`tarifa.cdrs.penalties`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from tarifa.core.origination import LataProblem, parse_lata_csv
from tarifa.dids.models import NpaNxx

#: A LATA file larger than this is refused before it is read (the NANP has under a million NPA-NXX).
LATA_FILE_MAX = 64 * 1024 * 1024


class LataRejected(Exception):
    """The file has problems; nothing was imported. ``problems`` lists every one."""

    def __init__(self, problems: list[LataProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s); nothing was imported")
        self.problems = problems


@dataclass(frozen=True, slots=True)
class LataImport:
    added: int
    changed: int
    removed: int


def import_lata(data: bytes, file: str, *, replace: bool = False) -> LataImport:
    """Import a LATA CSV (``npa_nxx,lata,state``): all of it or, when any row is refused,
    nothing (:class:`LataRejected` names the file, row, field, value and rule of each). Rows add
    or change NPA-NXX entries; ``replace`` also removes the entries the file does not list."""
    if len(data) > LATA_FILE_MAX:
        raise LataRejected([LataProblem(file, 0, "file", f"{len(data)} bytes", f"at most {LATA_FILE_MAX} bytes")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise LataRejected([LataProblem(file, row, "file", f"byte {exc.start}", "must be UTF-8 text")]) from None
    if "\x00" in text:
        raise LataRejected([LataProblem(file, 0, "file", "NUL", "must be text (a NUL character was found)")])
    rows, problems = parse_lata_csv(text, file)
    if problems:
        raise LataRejected(problems)
    with transaction.atomic():
        known = {
            n: (lata, state)
            for n, lata, state in NpaNxx.objects.select_for_update().values_list("npa_nxx", "lata", "state")
        }
        listed = {r.npa_nxx for r in rows}
        new = [NpaNxx(npa_nxx=r.npa_nxx, lata=r.lata, state=r.state) for r in rows if r.npa_nxx not in known]
        changed = [r for r in rows if r.npa_nxx in known and known[r.npa_nxx] != (r.lata, r.state)]
        NpaNxx.objects.bulk_create(new, batch_size=5000)
        for r in changed:
            NpaNxx.objects.filter(npa_nxx=r.npa_nxx).update(lata=r.lata, state=r.state)
        removed = 0
        if replace:
            gone = [n for n in known if n not in listed]
            for start in range(0, len(gone), 5000):
                removed += NpaNxx.objects.filter(npa_nxx__in=gone[start : start + 5000]).delete()[0]
    return LataImport(len(new), len(changed), removed)
