"""Switch CDR formats -> CanonicalCdr. One module per format, each with ``parse(text, *, switch, tz)``."""
