"""Django choices built from the core's enums, so a stored status has one vocabulary.

The core (``tarifa.core``) names every status and kind as a ``StrEnum``; the models, forms and
admin filters need ``(value, label)`` pairs. :class:`Labels` adds the human labels to a core
enum without restating its values, and refuses at import time an enum member left without a
label (or a label for no member), so the core and the database cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

E = TypeVar("E", bound=StrEnum)


class Labels(Generic[E]):
    """A core enum with one label per member: ``.choices`` is what a Django field takes
    (the same shape as ``TextChoices.choices``), ``.label(value)`` the label of a stored value."""

    __slots__ = ("_labels", "enum")

    def __init__(self, enum: type[E], labels: Mapping[E, str]) -> None:
        missing = [m.name for m in enum if m not in labels]
        extra = [str(k) for k in labels if k not in enum.__members__.values()]
        if missing or extra:
            raise ValueError(f"labels of {enum.__qualname__}: missing for {missing}, for no member: {extra}")
        self.enum = enum
        self._labels = {m: labels[m] for m in enum}

    @property
    def choices(self) -> list[tuple[str, str]]:
        """``[(value, label), ...]`` in the enum's order, as Django's ``choices=`` takes them."""
        return [(m.value, label) for m, label in self._labels.items()]

    def label(self, value: str) -> str:
        """The label of ``value`` (a member or its stored string); ``ValueError`` if it is none."""
        return self._labels[self.enum(value)]
