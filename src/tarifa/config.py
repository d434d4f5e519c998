"""Configuration from ``TARIFA_*`` environment variables, each with a safe embedded default.

Kept apart from Django's settings module so the CLI can read the listen address and the
data directory without configuring Django.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A TARIFA_* variable with a value Tarifa cannot use; the message names it, the value and the rule."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"TARIFA_{name}", default)


def _refuse(name: str, raw: str, rule: str) -> ConfigError:
    return ConfigError(f"TARIFA_{name} {raw!r} is refused: {rule}")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "")
    if raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _refuse(name, raw, "must be on or off (1/0, true/false, yes/no)")


def _env_int(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = _env(name, "")
    if raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _refuse(name, raw, f"must be a whole number from {minimum} to {maximum}") from None
    if not minimum <= value <= maximum:
        raise _refuse(name, raw, f"must be a whole number from {minimum} to {maximum}")
    return value


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


def var_path() -> Path:
    """Where the state directory is (TARIFA_VAR_DIR, default ``./var``), without creating it."""
    raw = _env("VAR_DIR", "var")
    path = Path(raw).resolve()
    if path.exists() and not path.is_dir():
        raise _refuse("VAR_DIR", raw, "must be a directory (or a path where one can be created), not a file")
    return path


def var_dir() -> Path:
    """Directory for the embedded database, the generated secret key and other state.

    Created 700, and tightened to 700 when it is TARIFA's own and open to others: it holds the
    session table and the secret key, which other local users must not read (issue 12 item 4).
    A directory shared with others is never changed (attack report L9): TARIFA_VAR_DIR=/tmp must
    not strip /tmp of its sticky bit. "Its own" means: owned by this user, without the sticky bit,
    and either created just now, empty, or already holding TARIFA's files.
    """
    path = var_path()
    created = not path.exists()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077 and _tarifas_own(path, info, created):
        path.chmod(0o700)
    return path


#: Files only TARIFA puts in its var directory.
_OWN_FILES = ("tarifa.sqlite3", "secret_key")


def _tarifas_own(path: Path, info: os.stat_result, created: bool) -> bool:
    if info.st_uid != os.getuid() or info.st_mode & stat.S_ISVTX:
        return False
    return created or not any(path.iterdir()) or any((path / name).exists() for name in _OWN_FILES)


def embedded_database() -> Path | None:
    """The SQLite file used when TARIFA_DATABASE_URL is not set, else None."""
    return None if _env("DATABASE_URL") else var_path() / "tarifa.sqlite3"


#: the URL schemes of the two databases Tarifa runs on (dj_database_url's names)
_DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql")
_DATABASE_RULE = "must be sqlite:///path/to/file.sqlite3 or postgres://user:password@host:port/database"


def database_url() -> str:
    """TARIFA_DATABASE_URL, else the embedded SQLite file in the var directory."""
    return given_database_url() or f"sqlite:///{var_dir() / 'tarifa.sqlite3'}"


def given_database_url() -> str | None:
    """TARIFA_DATABASE_URL checked as far as it can be without connecting; None when it is not set."""
    raw = _env("DATABASE_URL")
    if not raw:
        return None
    import dj_database_url

    scheme = raw.partition("://")[0]
    if scheme not in _DATABASE_SCHEMES:
        raise _refuse("DATABASE_URL", _shown_url(raw), _DATABASE_RULE)
    try:
        parsed = dj_database_url.parse(raw)
    except ValueError:
        raise _refuse(
            "DATABASE_URL",
            _shown_url(raw),
            f"{_DATABASE_RULE} (a port from 1 to 65535; characters such as # / @ in the password %-encoded)",
        ) from None
    if not parsed.get("NAME"):
        raise _refuse("DATABASE_URL", _shown_url(raw), f"{_DATABASE_RULE}: the database name is missing")
    return raw


def _shown_url(raw: str) -> str:
    """The URL as a refusal may show it: the password, up to the last ``@`` (one left un-encoded in
    it included), as ``***``."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", raw)


_PASSWORD_IN_URL = re.compile(r"^([A-Za-z0-9+.-]+://[^:/@]*):.*@")


def secret_key() -> str:
    """The secret key: from the environment, else generated once and kept in ``var/``."""
    key = _env("SECRET_KEY")
    if key:
        return key
    path = var_dir() / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass(frozen=True)
class Listen:
    host: str
    port: int


def listen() -> Listen:
    """``TARIFA_LISTEN`` as ``host:port`` (default ``127.0.0.1:8080``; ``[::1]:8080`` for IPv6)."""
    raw = _env("LISTEN", "127.0.0.1:8080")
    host, _, port = raw.strip().rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _refuse("LISTEN", raw, "must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:8080")
    return Listen(host.strip("[]") or "127.0.0.1", int(port))


def base_url(host: str | None = None, port: int | None = None) -> str:
    """The address people open, from the listen address: a wildcard host means this machine."""
    bind = listen()
    host, port = host or bind.host, port or bind.port
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1" if host != "::" else "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    user: str
    password: str
    use_tls: bool
    use_ssl: bool
    from_address: str


def smtp() -> Smtp:
    use_tls, use_ssl = _env_bool("SMTP_TLS", False), _env_bool("SMTP_SSL", False)
    if use_tls and use_ssl:  # Django refuses the pair only when the first message is sent
        raise _refuse(
            "SMTP_SSL", _env("SMTP_SSL"), "must be off when TARIFA_SMTP_TLS is on (STARTTLS or SSL, not both)"
        )
    from_address = _env("MAIL_FROM", "tarifa@localhost")
    _name, address = parseaddr(from_address)
    if "@" not in address or any(c.isspace() for c in address):
        raise _refuse("MAIL_FROM", from_address, "must be an e-mail address, e.g. billing@example.com")
    return Smtp(
        host=_env("SMTP_HOST", "127.0.0.1"),
        port=_env_int("SMTP_PORT", 25, 1, 65535),
        user=_env("SMTP_USER"),
        password=_env("SMTP_PASSWORD"),
        use_tls=use_tls,
        use_ssl=use_ssl,
        from_address=from_address,
    )


# a host name, a .domain (it and its subdomains), an IPv4 or a [IPv6] address, or * (Django's forms)
_ALLOWED_HOST = re.compile(r"^(\*|\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])$")


def allowed_hosts() -> list[str]:
    raw = _env("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
    hosts = [h.strip() for h in raw.split(",") if h.strip()]
    for host in hosts:
        if not _ALLOWED_HOST.match(host):
            raise _refuse(
                "ALLOWED_HOSTS",
                host,
                "each entry must be a host name, .domain, an IP address or *, without scheme, port or path, "
                "e.g. billing.example.com",
            )
    return hosts


def debug() -> bool:
    return _env_bool("DEBUG", False)


def workers() -> int:
    return _env_int("WORKERS", 2, 1, 256)


def threads() -> int:
    """Threads per worker process (TARIFA_THREADS, default 2: more adds GIL contention)."""
    return _env_int("THREADS", 2, 1, 256)


def waiting_threads() -> int:
    """Threads per worker process beyond TARIFA_THREADS that may wait for slow clients' request bodies
    (TARIFA_WAITING_THREADS, default 8; half for the switch endpoints, half for the rest): a request
    whose body would need one more is answered 503, so health and call authorisation always find a
    thread. Only TARIFA_THREADS of a worker's threads run the application at once."""
    return _env_int("WAITING_THREADS", 8, 2, 256)


def body_max_bytes() -> int:
    """Largest request body accepted on any path (TARIFA_BODY_MAX_BYTES, default 64 MiB; the switch
    endpoints accept 64 KiB): larger ones are answered 413 unread."""
    return _env_int("BODY_MAX_BYTES", 64 * 1024 * 1024, 65536, 2**40)


def body_timeout() -> int:
    """Seconds a request body may take to arrive in full (TARIFA_BODY_TIMEOUT, default 10): a slower
    one is answered 408 and its connection closed. Counted from the first wait for the body, for the
    whole body (a client that sends a byte now and then gets no more time). 0 turns the deadline off:
    ``tarifa serve`` then runs granian's WSGI interface directly -- faster for call authorisation
    (bench/README.md), but a slow body holds a thread until it arrives or the client goes."""
    return _env_int("BODY_TIMEOUT", 10, 0, 3600)


def access_log() -> bool:
    """Log every request (TARIFA_ACCESS_LOG, default on)."""
    return _env_bool("ACCESS_LOG", True)


# --- log-in throttling (issue 12 item 8) ------------------------------------------------------


@dataclass(frozen=True)
class LoginThrottle:
    """Failed log-ins allowed per user name and per client address within ``window_seconds``,
    and how long a key stays locked once it reaches its limit."""

    per_user: int
    per_address: int
    window_seconds: int
    lockout_seconds: int


def login_throttle() -> LoginThrottle:
    return LoginThrottle(
        per_user=_env_int("LOGIN_FAILURES_PER_USER", 5, 1, 1000),
        per_address=_env_int("LOGIN_FAILURES_PER_ADDRESS", 20, 1, 10000),
        window_seconds=_env_int("LOGIN_WINDOW", 900, 1, 86400 * 7),
        lockout_seconds=_env_int("LOGIN_LOCKOUT", 900, 1, 86400 * 7),
    )


def trusted_proxies() -> int:
    """How many reverse proxies stand in front (TARIFA_TRUSTED_PROXIES, default 0): the client
    address is then taken that many hops from the right of X-Forwarded-For, never from the left
    (which the client writes)."""
    return _env_int("TRUSTED_PROXIES", 0, 0, 10)


# --- HTTPS (issue 12 item 9) ------------------------------------------------------------------


@dataclass(frozen=True)
class Https:
    secure_cookies: bool
    ssl_redirect: bool
    hsts_seconds: int
    hsts_include_subdomains: bool
    hsts_preload: bool
    proxy_ssl_header: tuple[str, str] | None
    csrf_trusted_origins: list[str]


_HEADER = re.compile(r"^[A-Za-z0-9-]+$")


def https() -> Https:
    """Settings for running behind HTTPS; TARIFA_HTTPS=on turns on the safe defaults at once."""
    on = _env_bool("HTTPS", False)
    header_raw = _env("PROXY_SSL_HEADER").strip()
    header = None
    if header_raw:
        if not _HEADER.match(header_raw):
            raise _refuse("PROXY_SSL_HEADER", header_raw, "must be a header name such as X-Forwarded-Proto")
        header = ("HTTP_" + header_raw.upper().replace("-", "_"), "https")
    origins = _env_list("CSRF_TRUSTED_ORIGINS", "")
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
            raise _refuse(
                "CSRF_TRUSTED_ORIGINS",
                origin,
                "each origin must be scheme://host[:port], e.g. https://billing.example.com",
            )
    hsts = _env_int("HSTS_SECONDS", 31536000 if on else 0, 0, 63072000)
    return Https(
        secure_cookies=_env_bool("SECURE_COOKIES", on),
        ssl_redirect=_env_bool("SSL_REDIRECT", on),
        hsts_seconds=hsts,
        hsts_include_subdomains=_env_bool("HSTS_INCLUDE_SUBDOMAINS", hsts > 0),
        hsts_preload=_env_bool("HSTS_PRELOAD", False),
        proxy_ssl_header=header,
        csrf_trusted_origins=[o.rstrip("/") for o in origins],
    )


# --- knobs read by one module each, validated here like the rest ----------------------------------


def max_call_seconds() -> int:
    """System cap on one call's duration in seconds (TARIFA_MAX_CALL_SECONDS, default 4 hours)."""
    return _env_int("MAX_CALL_SECONDS", 14400, 1, 86400)


def cache_check_seconds() -> float:
    """How often a process checks whether its rate and route caches are stale (TARIFA_CACHE_CHECK_SECONDS)."""
    raw = _env("CACHE_CHECK_SECONDS", "1")
    try:
        value = float(raw)  # float-ok: seconds
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise _refuse("CACHE_CHECK_SECONDS", raw, "must be a number of seconds from 0 to 3600")
    return value


# --- online sign-up in the customer portal (issue 16) ---------------------------------------------


@dataclass(frozen=True)
class Signup:
    """The portal's public sign-up page: on or off (off by default: the operator opens it), the hours
    a sign-up has to follow its e-mail link before its reserved DIDs go back to the inventory, and
    how many sign-ups one client address may make per hour."""

    enabled: bool
    verify_hours: int
    per_address: int


def signup() -> Signup:
    return Signup(
        enabled=_env_bool("SIGNUP", False),
        verify_hours=_env_int("SIGNUP_VERIFY_HOURS", 48, 1, 720),
        per_address=_env_int("SIGNUP_PER_ADDRESS", 3, 1, 1000),
    )


def ingest_writers() -> int:
    """Batches a file import writes at once on PostgreSQL (TARIFA_INGEST_WRITERS, default 2)."""
    return _env_int("INGEST_WRITERS", 2, 1, 16)


def did_quarantine_days() -> int:
    """Days a released DID stays in quarantine before it can be sold again (0: at once)."""
    return _env_int("DID_QUARANTINE_DAYS", 90, 0, 3650)


def notice_card_expiry_days() -> tuple[int, ...]:
    """``TARIFA_NOTICE_CARD_EXPIRY_DAYS``: the days before a saved card's expiry when its notice
    goes out, comma-separated (default ``30,7``: one notice 30 days ahead, one 7 days ahead)."""
    from tarifa.core.notices import parse_windows

    raw = _env("NOTICE_CARD_EXPIRY_DAYS", "30,7")
    try:
        return parse_windows(raw)
    except ValueError as error:
        raise _refuse("NOTICE_CARD_EXPIRY_DAYS", raw, str(error)) from None


@dataclass(frozen=True)
class DidProvider:
    """The origination provider numbers are ordered from when the inventory has none."""

    url: str
    token: str
    timeout_seconds: int


def did_provider() -> DidProvider | None:
    """``TARIFA_DID_PROVIDER_URL`` (http or https) with ``TARIFA_DID_PROVIDER_TOKEN`` and
    ``TARIFA_DID_PROVIDER_TIMEOUT``; ``None`` when no URL is set (ordering uses the inventory only)."""
    raw = _env("DID_PROVIDER_URL", "").strip()
    timeout = _env_int("DID_PROVIDER_TIMEOUT", 10, 1, 120)
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise _refuse(
            "DID_PROVIDER_URL",
            raw,
            "must be an http:// or https:// URL with a host and no query, e.g. https://numbers.example.net/api",
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise _refuse("DID_PROVIDER_URL", raw, "has a port that is not 1-65535") from None
    return DidProvider(url=raw.rstrip("/"), token=_env("DID_PROVIDER_TOKEN", ""), timeout_seconds=timeout)


@dataclass(frozen=True)
class Gateway:
    """The card payment gateway (docs/payments.md). ``repr`` shows neither the key nor the secret."""

    url: str
    key: str
    webhook_secret: str

    def __repr__(self) -> str:
        return f"Gateway(url={self.url!r}, key=<hidden>, webhook_secret=<hidden>)"


def gateway() -> Gateway | None:
    """``TARIFA_GATEWAY_URL`` (http or https) with ``TARIFA_GATEWAY_KEY`` (the API key Tarifa sends)
    and ``TARIFA_GATEWAY_WEBHOOK_SECRET`` (the key of the callbacks' HMAC signatures, at least 16
    characters); ``None`` when no URL is set (no card payments, callbacks answered 404)."""
    raw = _env("GATEWAY_URL", "").strip()
    key = _env("GATEWAY_KEY", "")
    secret = _env("GATEWAY_WEBHOOK_SECRET", "")
    if secret and len(secret) < 16:
        raise _refuse("GATEWAY_WEBHOOK_SECRET", "<hidden>", "must be at least 16 characters (it signs callbacks)")
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise _refuse(
            "GATEWAY_URL",
            raw,
            "must be an http:// or https:// URL with a host and no query, e.g. https://pay.example/v1",
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise _refuse("GATEWAY_URL", raw, "has a port that is not 1-65535") from None
    if not key:
        raise _refuse("GATEWAY_KEY", "", "is required when TARIFA_GATEWAY_URL is set (the gateway's API key)")
    if not secret:
        raise _refuse(
            "GATEWAY_WEBHOOK_SECRET", "", "is required when TARIFA_GATEWAY_URL is set (the callbacks' signing secret)"
        )
    return Gateway(url=raw.rstrip("/"), key=key, webhook_secret=secret)


_ENGINE_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


def tax_engine() -> str:
    """The tax engine of the invoice run (TARIFA_TAX_ENGINE): ``builtin`` (the operator's tax tables,
    the default) or ``package.module:Class``, a class implementing ``tarifa.core.taxes.TaxEngine``
    (docs/taxes.md). The class is imported and checked here, at start-up, so a typo stops the process
    with its name rather than the first invoice run; its module must import without Django set up."""
    raw = _env("TAX_ENGINE", "builtin").strip()
    if raw in ("", "builtin"):
        return "builtin"
    if not _ENGINE_SPEC.match(raw):
        raise _refuse("TAX_ENGINE", raw, "must be builtin or package.module:Class, e.g. mytaxes.engine:BillSoftEngine")
    import importlib

    module_name, class_name = raw.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any failure to import is the operator's to fix, named
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise _refuse("TAX_ENGINE", raw, f"the module {module_name} cannot be imported ({reason})") from None
    engine = getattr(module, class_name, None)
    if not isinstance(engine, type):
        raise _refuse("TAX_ENGINE", raw, f"the module {module_name} has no class {class_name}")
    if not callable(getattr(engine, "taxes", None)):
        raise _refuse(
            "TAX_ENGINE", raw, f"the class {class_name} has no taxes(customer, lines, on) method (TaxEngine protocol)"
        )
    return raw


def admin_password() -> str | None:
    """The password ``tarifa createadmin`` sets when none is given (TARIFA_ADMIN_PASSWORD); None
    (unset or empty): a generated one. Its strength is checked where it is used, like a typed one."""
    return _env("ADMIN_PASSWORD") or None


#: set to 1 by ``tarifa serve`` for its server workers (read back by :func:`warm_up`)
WARM_UP_VARIABLE = "TARIFA_WARM_UP"


def warm_up() -> bool:
    """Whether this server worker loads the call-authorisation caches before its first request
    (TARIFA_WARM_UP: ``tarifa serve`` turns it on for the workers it starts; default off)."""
    return _env_bool("WARM_UP", False)


def django_superuser(field: str) -> str | None:
    """Django's own ``DJANGO_SUPERUSER_<FIELD>`` variable (PASSWORD, USERNAME, EMAIL, ...) that
    ``tarifa manage createsuperuser --noinput`` reads -- Django's name, not a TARIFA_* one; None
    when unset. Read here like every other variable, so the password rules can check it first."""
    return os.environ.get(f"DJANGO_SUPERUSER_{field.upper()}")


def check_all() -> None:
    """Read every TARIFA_* variable once, so a value Tarifa cannot use stops ``tarifa serve`` and
    every command that uses the database before anything is served or written -- not a request
    that happens to read it later (an HTTP 500 on the first DID release for a bad
    TARIFA_DID_QUARANTINE_DAYS). Reads only: creates neither the var directory nor the secret key.
    Every refused variable is named at once, one per line. TARIFA_ADMIN_PASSWORD is checked by
    ``tarifa createadmin``, the one command that uses it (the password rules need Django)."""
    refused = []
    for read in _READERS:
        try:
            read()
        except ConfigError as error:
            refused.append(str(error))
    if refused:
        raise ConfigError("\n".join(refused))


#: one reader per variable or group of variables (tests/unit/test_config.py checks that every
#: variable this module reads is refused through check_all when its value is bad)
_READERS: tuple[Callable[[], object], ...] = (
    var_path,
    given_database_url,
    listen,
    smtp,
    allowed_hosts,
    debug,
    workers,
    threads,
    waiting_threads,
    body_max_bytes,
    body_timeout,
    access_log,
    login_throttle,
    signup,
    trusted_proxies,
    https,
    max_call_seconds,
    cache_check_seconds,
    ingest_writers,
    did_quarantine_days,
    notice_card_expiry_days,
    did_provider,
    gateway,
    warm_up,
    tax_engine,
)
