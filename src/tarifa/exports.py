"""Export formats of the back-office listings (seed 003: CSV, TXT, XLSX, XLS), none of which
lets a cell run as a spreadsheet formula (:mod:`tarifa.spreadsheets`).

django-import-export's own formats write caller IDs such as ``=HYPERLINK(...)`` as live XLSX
formulas and unchanged CSV. These subclasses keep its dataset and file types and change only how
cells are written: CSV and tab-separated text guard formula-leading text with an apostrophe (plain
numbers, such as negative amounts, stay as they are); XLSX writes text as string cells. XLS
(xlwt) always writes text as text cells, so it needs nothing more than the same registration.
"""

from __future__ import annotations

from typing import Any

import tablib
from import_export.formats import base_formats
from import_export.formats.base_formats import CSV, TSV, XLS, XLSX

from tarifa.spreadsheets import guarded_rows, write_xlsx

__all__ = ["TXT", "SafeCSV", "SafeXLS", "SafeXLSX"]


def _guarded(dataset: tablib.Dataset) -> tablib.Dataset:
    safe = tablib.Dataset(*guarded_rows(dataset), headers=next(iter(guarded_rows([dataset.headers or []]))) or None)
    safe.title = dataset.title
    return safe


class SafeCSV(CSV):
    """CSV whose formula-leading text cells carry the apostrophe guard."""

    def export_data(self, dataset: Any, **kwargs: Any) -> Any:
        return super().export_data(_guarded(dataset), **kwargs)


class TXT(TSV):
    """Tab-separated text offered as ``.txt`` (seed 003), guarded like :class:`SafeCSV`."""

    def get_title(self) -> str:
        return "txt"

    def get_extension(self) -> str:
        return "txt"

    def get_content_type(self) -> str:
        return "text/plain"

    def export_data(self, dataset: Any, **kwargs: Any) -> Any:
        return _guarded(dataset).export("tsv", **kwargs)


class SafeXLSX(XLSX):
    """XLSX whose text cells are strings, never formulas; control characters, which XML cannot
    hold, are shown as U+FFFD instead of failing the whole export."""

    def export_data(self, dataset: Any, **kwargs: Any) -> Any:
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        def clean(value: Any) -> Any:
            return ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", value) if isinstance(value, str) else value

        rows = ([clean(value) for value in row] for row in dataset)
        return write_xlsx([clean(h) for h in dataset.headers or []], rows, dataset.title or "Export")


class SafeXLS(XLS):
    """XLS as django-import-export writes it (xlwt writes text as labels, never formulas)."""


# django-import-export hands native numbers and dates (not their text) only to the formats in this
# list, compared by exact type; ours are subclasses, so they are registered by name.
for _format in (SafeXLSX, SafeXLS):
    if _format not in base_formats.BINARY_FORMATS:
        base_formats.BINARY_FORMATS.append(_format)


#: Every listing of the back office exports in these (seed 003), none running a cell as a formula.
FORMATS = [SafeCSV, TXT, SafeXLSX, SafeXLS]
