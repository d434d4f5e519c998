"""Notice templates the operator edits: plain text with ``{{ placeholder }}`` and nothing else.

Why not Django's template language: an operator's template must not reach settings, files or
objects (server-side template injection). Here a template is text plus named placeholders filled
from a flat dictionary of strings: no tags (``{% load %}``, ``{% include %}``, ``{% debug %}``),
no filters, no attribute walking (``{{ settings.SECRET_KEY }}`` is not a name). A template is
checked when saved -- every problem names its line and the placeholder -- and rendering escapes
the values for HTML bodies and flattens them for the subject.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

_OPEN, _CLOSE = "{{", "}}"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TAGS = ("{%", "%}", "{#", "#}")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")


@dataclass(frozen=True)
class TemplateProblem:
    line: int
    text: str
    rule: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text} is refused: {self.rule}"


def problems(source: str, allowed: Collection[str]) -> list[TemplateProblem]:
    """Every problem of ``source``: tags, placeholders not closed on their line, and names that are
    not among ``allowed`` (listed in the rule so the operator sees what is available)."""
    found: list[TemplateProblem] = []
    known = ", ".join(sorted(allowed)) or "none"
    for number, line in enumerate(source.splitlines() or [""], start=1):
        for tag in _TAGS:
            if tag in line:
                start = line.index(tag)
                found.append(
                    TemplateProblem(
                        number,
                        line[start : start + 40].strip(),
                        "template tags and comments are not allowed; use {{ placeholder }} only",
                    )
                )
                break
        rest = _PLACEHOLDER.sub("", line)
        if _OPEN in rest:
            start = rest.index(_OPEN)
            found.append(
                TemplateProblem(
                    number, rest[start : start + 40].strip(), "a placeholder must close with }} on its line"
                )
            )
        for match in _PLACEHOLDER.finditer(line):
            name = match.group(1).strip()
            if not _NAME.match(name) or name not in allowed:
                found.append(
                    TemplateProblem(number, match.group(0), f"unknown placeholder; the known ones are {known}")
                )
    return found


def render(source: str, context: Mapping[str, str], *, escape: bool = False) -> str:
    """``source`` with each ``{{ name }}`` replaced by ``context[name]`` (HTML-escaped when
    ``escape``); an unknown name renders as nothing (templates are checked on save; a stored one
    that is not, e.g. after a placeholder was retired, never shows anything but the context)."""

    def fill(match: re.Match[str]) -> str:
        value = context.get(match.group(1).strip(), "")
        return html.escape(value, quote=True) if escape else value

    return _PLACEHOLDER.sub(fill, source)
