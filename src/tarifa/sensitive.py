"""Which stored fields are secrets: the one list every export (and any later listing) leaves out.

Why a list *and* a name rule: the list names the secrets we know (SIP passwords and secrets, API
token hashes, password hashes); the name rule keeps a secret added later (a RADIUS shared secret,
a portal password) out of every export until someone decides otherwise — closed by default.
"""

from __future__ import annotations

import re

#: ``app_label.model_name.field_name`` of every known secret.
SENSITIVE_FIELDS: frozenset[str] = frozenset(
    {
        "customers.account.sip_password",
        "customers.sipdevice.secret",
        "dids.did.password",
        "api.apitoken.key_hash",
        "billing.paymentmethod.token",  # the gateway charges a saved card on it
        "auth.user.password",
    }
)

#: Any field whose name says it holds a secret.
_SECRET_NAME = re.compile(r"password|secret|passwd|key_hash|token_hash|api_key|private_key|session_key", re.IGNORECASE)


def is_sensitive(app_label: str, model_name: str, field_path: str) -> bool:
    """True when ``field_path`` (a field name or a ``related__field`` path) holds a secret."""
    last = field_path.rsplit("__", 1)[-1]
    return f"{app_label}.{model_name.lower()}.{last}" in SENSITIVE_FIELDS or bool(_SECRET_NAME.search(last))
