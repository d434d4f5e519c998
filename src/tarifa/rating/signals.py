"""What the rating app tells the apps built on it, without knowing them.

``rates_written`` is sent after rate rows were written by raw bulk statements (deck imports),
which send no ``post_save``; ``sender`` is the rate model written (``Rate`` or any other
``RateFields`` model). The call authorisation's cache listens to it (``calls/cache.py``), so a
deck import makes every process re-read its rate tables -- and rating need not import calls,
which builds on it (docs/architecture.md, "Layers").
"""

from __future__ import annotations

from django.dispatch import Signal

rates_written = Signal()
