"""Configuration from ``TARIFA_*`` environment variables, each with a safe embedded default.

Kept apart from Django's settings module so the CLI can read the listen address and the
data directory without configuring Django.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"TARIFA_{name}", default)


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "")
    if raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def var_path() -> Path:
    """Where the state directory is (TARIFA_VAR_DIR, default ``./var``), without creating it."""
    return Path(_env("VAR_DIR", "var")).resolve()


def var_dir() -> Path:
    """Directory for the embedded database, the generated secret key and other state (created)."""
    path = var_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedded_database() -> Path | None:
    """The SQLite file used when TARIFA_DATABASE_URL is not set, else None."""
    return None if _env("DATABASE_URL") else var_path() / "tarifa.sqlite3"


def database_url() -> str:
    return _env("DATABASE_URL", f"sqlite:///{var_dir() / 'tarifa.sqlite3'}")


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
    """``TARIFA_LISTEN`` as ``host:port`` (default ``127.0.0.1:8080``)."""
    raw = _env("LISTEN", "127.0.0.1:8080")
    host, _, port = raw.rpartition(":")
    return Listen(host or "127.0.0.1", int(port or 8080))


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
    return Smtp(
        host=_env("SMTP_HOST", "127.0.0.1"),
        port=int(_env("SMTP_PORT", "25")),
        user=_env("SMTP_USER"),
        password=_env("SMTP_PASSWORD"),
        use_tls=_env_bool("SMTP_TLS", False),
        use_ssl=_env_bool("SMTP_SSL", False),
        from_address=_env("MAIL_FROM", "tarifa@localhost"),
    )


def allowed_hosts() -> list[str]:
    raw = _env("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
    return [h.strip() for h in raw.split(",") if h.strip()]


def debug() -> bool:
    return _env_bool("DEBUG", False)


def workers() -> int:
    return int(_env("WORKERS", "2"))


def threads() -> int:
    """Threads per worker process (TARIFA_THREADS, default 2: more adds GIL contention)."""
    return int(_env("THREADS", "2"))


def waiting_threads() -> int:
    """Threads per worker process beyond TARIFA_THREADS that may wait for slow clients' request bodies
    (TARIFA_WAITING_THREADS, default 8; half for the switch endpoints, half for the rest): a request
    whose body would need one more is answered 503, so health and call authorisation always find a
    thread. Only TARIFA_THREADS of a worker's threads run the application at once."""
    return int(_env("WAITING_THREADS", "8"))


def body_max_bytes() -> int:
    """Largest request body accepted on any path (TARIFA_BODY_MAX_BYTES, default 64 MiB; the switch
    endpoints accept 64 KiB): larger ones are answered 413 unread."""
    return int(_env("BODY_MAX_BYTES", str(64 * 1024 * 1024)))


def access_log() -> bool:
    """Log every request (TARIFA_ACCESS_LOG, default on)."""
    return _env_bool("ACCESS_LOG", True)
