"""Django settings for Tarifa. Every deployment knob comes from ``tarifa.config`` (TARIFA_* env)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from tarifa import config

SECRET_KEY = config.secret_key()
DEBUG = config.debug()
ALLOWED_HOSTS = config.allowed_hosts()

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.import_export",
    "django.contrib.admin.apps.SimpleAdminConfig",
    # before django.contrib.auth: its createsuperuser (password rules also with --noinput) is the one found
    "tarifa.throttle",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_countries",
    "import_export",
    # ninja's own templates and static files: the API docs load Swagger UI from here, not a CDN.
    "ninja",
    "tarifa.customers",
    "tarifa.rating",
    "tarifa.routing",
    "tarifa.dids",
    "tarifa.billing",
    "tarifa.cdrs",
    "tarifa.calls",
    "tarifa.services",
    "tarifa.notices",
    "tarifa.api",
    "tarifa.reports",
    "tarifa.portal",
    "tarifa.audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tarifa.middleware.ContentSecurityPolicy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tarifa.middleware.RefuseNulInBackOfficeQuery",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tarifa.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates first: they override the theme's (e.g. the dashboard on admin/index.html).
        "DIRS": [Path(__file__).resolve().parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "tarifa.wsgi.application"


def _database(url: str | None = None) -> dj_database_url.DBConfig:
    # Persistent connections; no health-check query per request (it cost a round trip on every
    # call authorisation). A broken connection fails one request and is replaced on the next.
    db = dj_database_url.parse(url or config.database_url(), conn_max_age=60, conn_health_checks=False)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # Django's backend, with the database and its WAL/SHM files readable by their owner only.
        db["ENGINE"] = "tarifa.sqlite_backend"
        db["CONN_MAX_AGE"] = 0
        db["OPTIONS"] = {
            # WAL lets readers work while one writer writes; IMMEDIATE takes the write lock at
            # BEGIN so two writers queue on busy_timeout instead of failing mid-transaction.
            # A 64 MiB page cache (filled only as used) keeps the CDR indexes of a large import in
            # memory: about a quarter less CPU per CDR than the 2 MiB default.
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    return db


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# The seed 003 rule for every password (staff without its 30-character cap), plus Django's
# checks against the user's own name and e-mail and against the 20,000 most common passwords.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "tarifa.validators.WebPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve the apps' static files straight from the installed packages: no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

_smtp = config.smtp()
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = _smtp.host
EMAIL_PORT = _smtp.port
EMAIL_HOST_USER = _smtp.user
EMAIL_HOST_PASSWORD = _smtp.password
EMAIL_USE_TLS = _smtp.use_tls
EMAIL_USE_SSL = _smtp.use_ssl
DEFAULT_FROM_EMAIL = _smtp.from_address
SERVER_EMAIL = _smtp.from_address

# Behind HTTPS (docs/deployment.md): TARIFA_HTTPS and the variables that refine it.
_https = config.https()
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _https.secure_cookies
SECURE_SSL_REDIRECT = _https.ssl_redirect
# Switches and API clients do not follow a redirect of a POST: the API is never redirected.
SECURE_REDIRECT_EXEMPT = [r"^api/"]
SECURE_HSTS_SECONDS = _https.hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https.hsts_include_subdomains
SECURE_HSTS_PRELOAD = _https.hsts_preload
SECURE_PROXY_SSL_HEADER = _https.proxy_ssl_header
CSRF_TRUSTED_ORIGINS = _https.csrf_trusted_origins

# Portal password-reset links (tarifa.portal) work once and for one hour.
PASSWORD_RESET_TIMEOUT = 3600

LOGIN_URL = "admin:login"
# Unfold's log-in form posts no "next": without this, Django sends people to /accounts/profile/ (a 404).
LOGIN_REDIRECT_URL = "admin:index"

UNFOLD = {
    "SITE_TITLE": "Tarifa",
    "SITE_HEADER": "Tarifa",
    "SITE_SYMBOL": "call",
    "SHOW_HISTORY": True,
    "SIDEBAR": {"show_search": True, "show_all_applications": True},
    "DASHBOARD_CALLBACK": "tarifa.reports.dashboard.dashboard_callback",
}

# Seed 003: any listing exports as CSV, TXT, XLSX and XLS, no cell running as a formula: tarifa.exports.FORMATS,
# the back office's export formats (TarifaAdmin), imported with the admin pages, not by every process.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"refusal": {"()": "tarifa.logs.RefusalWithoutTraceback"}},
    "formatters": {"named": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "refusals": {"class": "logging.StreamHandler", "filters": ["refusal"], "formatter": "named"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    # Requests Django refuses as suspicious (a disallowed Host header, ...): one warning line each, no traceback.
    "loggers": {"django.security": {"handlers": ["refusals"], "level": "WARNING", "propagate": False}},
}
