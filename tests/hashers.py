"""A password hasher for the test suite only (listed first by tests/conftest.py)."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 at the smallest cost it allows.

    The production parameters (100 MiB, 2 passes, 8 lanes) cost about 0.2 s of CPU per hash or
    check, and the suite makes hundreds of them (every staff user, every customer with a web
    password, every log-in). Same algorithm and the same ``argon2$`` encoding, so hashes made
    with the production cost (e.g. by a ``tarifa`` subprocess) still verify in tests.
    """

    time_cost = 1
    memory_cost = 8
    parallelism = 1
