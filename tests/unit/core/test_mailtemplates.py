"""Operator templates: placeholders only, every problem named by line, nothing reachable but the
context (server-side template injection)."""

from __future__ import annotations

import pytest

from tarifa.core.mailtemplates import problems, render

ALLOWED = ("customer_name", "total")


def test_placeholders_are_filled_and_spaces_inside_braces_do_not_matter() -> None:
    out = render("Hello {{customer_name}}, total {{ total }}.", {"customer_name": "Jane", "total": "5.00"})
    assert out == "Hello Jane, total 5.00."


def test_html_values_are_escaped_but_the_template_markup_is_kept() -> None:
    out = render("<p>{{ customer_name }}</p>", {"customer_name": "<script>alert(1)</script>"}, escape=True)
    assert out == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_a_good_template_has_no_problems() -> None:
    assert problems("Hello {{ customer_name }}\nTotal {{ total }}\n", ALLOWED) == []


@pytest.mark.parametrize(
    ("source", "line", "text"),
    [
        ("Hi\n{{ settings.SECRET_KEY }}", 2, "{{ settings.SECRET_KEY }}"),
        ("{{ customer.user.password }}", 1, "{{ customer.user.password }}"),
        ("{{ nope }}", 1, "{{ nope }}"),
        ("{{ total|safe }}", 1, "{{ total|safe }}"),
        ("a\nb\n{% load static %}", 3, "{% load static %}"),
        ('{% include "/etc/passwd" %}', 1, '{% include "/etc/passwd" %}'),
        ("{% debug %}", 1, "{% debug %}"),
        ("{# hidden #}", 1, "{# hidden #}"),
        ("Total {{ total", 1, "{{ total"),
    ],
)
def test_problems_name_the_line_and_the_text(source: str, line: int, text: str) -> None:
    [problem] = problems(source, ALLOWED)
    assert problem.line == line
    assert problem.text == text
    assert str(problem).startswith(f"line {line}: {text} is refused: ")


def test_unknown_placeholder_lists_the_known_ones() -> None:
    [problem] = problems("{{ secret }}", ALLOWED)
    assert "the known ones are customer_name, total" in problem.rule


def test_rendering_never_reaches_anything_but_the_context() -> None:
    source = '{{ settings.SECRET_KEY }}{% debug %}{% include "/etc/passwd" %}{{ customer_name }}'
    out = render(source, {"customer_name": "Jane"})
    assert out == '{% debug %}{% include "/etc/passwd" %}Jane'  # tags stay inert text; unknown names empty
