"""``tarifa rate``: standalone batch rating of a CDR file against a deck file (no database)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``rate`` command to the ``tarifa`` CLI."""
