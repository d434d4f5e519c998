"""One broken rule, as the core's rule sets (invoices, taxes, penalties, deposits) return it: the
field it is on, the field's label, the value refused, the rule and a short code. A form shows each
next to its field; ``str()`` is the house sentence ``<label> <value> is refused: <rule>``.

Pure: no Django, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: ``<label> <value> is refused: <rule>`` on ``field``."""

    field: str
    label: str
    value: object
    rule: str
    code: str

    def __str__(self) -> str:
        shown = repr(self.value) if isinstance(self.value, str) else ("(empty)" if self.value is None else self.value)
        return f"{self.label} {shown} is refused: {self.rule}"
