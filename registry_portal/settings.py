"""Settings of the registry portal.

Every setting comes from the environment, with defaults that make a laptop work
with nothing installed beyond Python: SQLite (WAL) and blobs on local disk under
PORTAL_DATA_DIR, and a Celery broker on kombu's filesystem transport.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DATA_DIR = Path(os.environ.get("PORTAL_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once into the data dir."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = DATA_DIR / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG")
# The external URL: the token realm and the pull commands use it. By default, where
# `make run` listens (HOST and PORT).
PORTAL_URL = (
    os.environ.get("PORTAL_URL")
    or f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
).rstrip("/")
# ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS and the HTTPS settings come from PORTAL_URL: see the
# "Production settings" block at the end.

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "registry_portal.outbox",
    "registry_portal.accounts",
    "registry_portal.registry",
    "scanning",
    "promotions",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "registry_portal.observability",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "registry_portal.observability.middleware.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "registry_portal.urls"
WSGI_APPLICATION = "registry_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database -------------------------------------------------------------------------------
_sqlite_path = DATA_DIR / "portal.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{_sqlite_path}",
        # A push is 30 and more small requests: keep connections instead of opening one each.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 300),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE transactions and a
    # busy timeout make concurrent writers wait for each other instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file (not memory) so a worker process started by a test sees the same data; one per
    # test run, so parallel runs do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
STATICFILES_DIRS = [BASE_DIR / "registry_portal" / "static"]

# --- Blob storage ---------------------------------------------------------------------------
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "media")},
    },
    "blobs": {
        "BACKEND": os.environ.get(
            "BLOB_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": {"location": str(DATA_DIR / "blobs")}
        if "BLOB_STORAGE_BACKEND" not in os.environ
        else {
            # django-storages' S3Storage: the bucket and endpoint from the environment (boto3
            # reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY itself).
            name: os.environ[variable]
            for name, variable in (
                ("bucket_name", "AWS_STORAGE_BUCKET_NAME"),
                ("endpoint_url", "AWS_S3_ENDPOINT_URL"),
                ("region_name", "AWS_S3_REGION_NAME"),
            )
            if os.environ.get(variable)
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Celery ---------------------------------------------------------------------------------
_broker_dir = DATA_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A task whose worker dies is redelivered after this many seconds (Redis).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY", 3600)}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every task's time limits, in seconds: at the soft one the task gets SoftTimeLimitExceeded
# (and fails, saying so), at the hard one its worker process is killed and replaced. No rule,
# layer or receiver holds a worker longer. Tasks that need longer get their own limits in
# CELERY_TASK_ANNOTATIONS (Scanning, below). On Redis, CELERY_VISIBILITY must stay above the
# longest hard limit, or a running task is delivered a second time.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 330)
CELERY_TASK_ANNOTATIONS: dict[str, dict[str, int]] = {}
# Scanning's tasks have a queue of their own, so a slow scan never delays a promotion where
# workers serve the queues apart (`celery worker -Q scans` and `-Q celery`). A worker started
# without -Q (the tests') serves both; `make run`'s names both.
SCAN_QUEUE = "scans"
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Each queue with its own exchange and routing key: a bare Queue(name) is bound with the
# default routing key, and would receive a copy of every default-queue message.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in (CELERY_TASK_DEFAULT_QUEUE, SCAN_QUEUE)
)
CELERY_TASK_ROUTES = {"scanning.tasks.*": {"queue": SCAN_QUEUE}}
# Run by the scheduler (`celery beat`; `make run` runs it beside its worker).
CELERY_BEAT_SCHEDULE = {
    "purge-access-tokens": {
        "task": "registry_portal.accounts.tasks.purge_access_tokens",
        "schedule": 24 * 3600,
    },
    "expire-uploads": {
        "task": "registry_portal.registry.tasks.expire_uploads",
        "schedule": 3600,
    },
}

# LOG_FORMAT=json: one JSON object a line, with the request id (observability.logs); the
# worker's lines too. Plain text by default.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "registry_portal.observability.logs.RequestIdFilter"}},
    "formatters": {"json": {"()": "registry_portal.observability.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# --- Registry (the /v2/ Distribution API) ---------------------------------------------------
# The service name clients pass to the token service and that tokens carry as their audience.
REGISTRY_TOKEN_SERVICE = (
    os.environ.get("REGISTRY_TOKEN_SERVICE") or (PORTAL_URL.split("://", 1)[-1].split("/", 1)[0])
)
# The spec asks that at least 4 MiB be accepted; larger manifests are refused with 413.
REGISTRY_MAX_MANIFEST_BYTES = env_int("REGISTRY_MAX_MANIFEST_BYTES", 4 * 1024 * 1024)
# DELETE of manifests, tags and blobs; when off, /v2/ answers 405 UNSUPPORTED.
REGISTRY_DELETE_ENABLED = env_bool("REGISTRY_DELETE_ENABLED", True)
# Uploads with no activity for this long are removed (registry_expire_uploads, expire_uploads).
REGISTRY_UPLOAD_TTL_HOURS = env_int("REGISTRY_UPLOAD_TTL_HOURS", 24)
# Blob pulls: "auto" redirects to a presigned URL when the blob storage is remote (S3),
# "true" always redirects when the storage can give a URL, "false" always streams.
REGISTRY_BLOB_REDIRECT = os.environ.get("REGISTRY_BLOB_REDIRECT", "auto").strip().lower()
# Lifetime of the presigned URLs of blob redirects.
REGISTRY_BLOB_REDIRECT_SECONDS = env_int("REGISTRY_BLOB_REDIRECT_SECONDS", 1200)
# Garbage collection keeps unreferenced blobs and manifests younger than this.
REGISTRY_GC_GRACE_MINUTES = env_int("REGISTRY_GC_GRACE_MINUTES", 60)
# --- end Registry ---------------------------------------------------------------------------

# --- Token service (/auth/token) ------------------------------------------------------------
# The `iss` of our tokens: a downstream distribution registry's auth.token.issuer.
REGISTRY_TOKEN_ISSUER = os.environ.get("REGISTRY_TOKEN_ISSUER", "registry-portal")
# Seconds an access token lives (never less than 60, which clients treat as the minimum).
REGISTRY_TOKEN_LIFETIME = env_int("REGISTRY_TOKEN_LIFETIME", 300)
# Seconds a refresh token (offline_token=true, access_type=offline) lives.
REGISTRY_REFRESH_TOKEN_LIFETIME = env_int("REGISTRY_REFRESH_TOKEN_LIFETIME", 30 * 24 * 3600)
# The signing key (generated on first use) and its self-signed certificate, which a downstream
# registry takes as auth.token.rootcertbundle (`manage.py registry_token_cert`).
REGISTRY_TOKEN_KEY_FILE = Path(
    os.environ.get("REGISTRY_TOKEN_KEY_FILE") or DATA_DIR / "keys" / "token.key"
)
REGISTRY_TOKEN_CERT_FILE = Path(
    os.environ.get("REGISTRY_TOKEN_CERT_FILE") or DATA_DIR / "keys" / "token.crt"
)
# --- end Token service ----------------------------------------------------------------------

# --- REST API (/api/v1/) --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry_portal.api.authentication.AccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "registry_portal.api.pagination.PageNumberPagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "registry_portal.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "registry_portal.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Registry portal API",
    "DESCRIPTION": "Organizations, teams, repositories, tags, promotion policies and records, "
    "scan reports with their components and findings, and the OSV vulnerability database. "
    "Authenticate with a personal access token (`Authorization: Bearer <token>`) or a "
    "browser session (with CSRF). Every error has the shape "
    '`{"error": {"code", "message", "fields"}}`.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Two "status" fields with different choices (a scan's, an OSV snapshot's).
    "ENUM_NAME_OVERRIDES": {
        "ScanStatusEnum": "scanning.choices.ScanStatus",
        "SnapshotStatusEnum": "scanning.choices.SnapshotStatus",
    },
}
# --- end REST API ---------------------------------------------------------------------------

# --- Scanning -------------------------------------------------------------------------------
# The OSV bulk data (an all.zip) synced periodically with an ETag-conditional download; empty
# means off (load a zip with `manage.py osv_import` or in the admin instead).
OSV_SYNC_URL = os.environ.get("OSV_SYNC_URL", "")
OSV_SYNC_SECONDS = env_int("OSV_SYNC_SECONDS", 6 * 3600)
OSV_MAX_DOWNLOAD_BYTES = env_int("OSV_MAX_DOWNLOAD_BYTES", 2 * 1024**3)
# Layers bigger than this (compressed, as stored) are not read: the scan fails saying so.
SCAN_MAX_LAYER_BYTES = env_int("SCAN_MAX_LAYER_BYTES", 4 * 1024**3)
# Bounds on one layer's decompressed bytes and entries (tar bombs).
SCAN_MAX_DECOMPRESSED_BYTES = env_int("SCAN_MAX_DECOMPRESSED_BYTES", 16 * 1024**3)
SCAN_MAX_ENTRIES = env_int("SCAN_MAX_ENTRIES", 500_000)
# What the reader keeps of a layer is cached in the database up to this size (compressed).
SCAN_LAYER_CACHE_MAX_BYTES = env_int("SCAN_LAYER_CACHE_MAX_BYTES", 16 * 1024**2)
# A scan job's time limits (seconds; SBOM ingestion has the same); a report left "running"
# longer than the stale delay (a worker died) is claimed again by the next job.
SCAN_SOFT_TIME_LIMIT = env_int("SCAN_SOFT_TIME_LIMIT", 600)
SCAN_TIME_LIMIT = env_int("SCAN_TIME_LIMIT", 660)
SCAN_STALE_SECONDS = env_int("SCAN_STALE_SECONDS", 900)
# An OSV sync (download and import) and a re-match of every stored image take longer.
OSV_TASK_SOFT_TIME_LIMIT = env_int("OSV_TASK_SOFT_TIME_LIMIT", 3300)
OSV_TASK_TIME_LIMIT = env_int("OSV_TASK_TIME_LIMIT", 3480)
_scan_limits = {"soft_time_limit": SCAN_SOFT_TIME_LIMIT, "time_limit": SCAN_TIME_LIMIT}
_osv_limits = {"soft_time_limit": OSV_TASK_SOFT_TIME_LIMIT, "time_limit": OSV_TASK_TIME_LIMIT}
CELERY_TASK_ANNOTATIONS.update(
    {
        "scanning.tasks.scan_manifest_task": _scan_limits,
        "scanning.tasks.sbom_ingest_task": _scan_limits,
        "scanning.tasks.osv_sync_task": _osv_limits,
        "scanning.tasks.rematch_task": _osv_limits,
    }
)
# SBOM referrer blobs larger than this are not ingested.
SCAN_MAX_SBOM_BYTES = env_int("SCAN_MAX_SBOM_BYTES", 64 * 1024**2)
if OSV_SYNC_URL:
    CELERY_BEAT_SCHEDULE["osv-sync"] = {
        "task": "scanning.tasks.osv_sync_task",
        "schedule": OSV_SYNC_SECONDS,
    }
# --- end Scanning ---------------------------------------------------------------------------

# --- Outbox (follow-up work: scans, promotions) ---------------------------------------------
# The sweeper (Celery beat) runs this often: it dispatches jobs never dispatched (the broker
# was down at commit) and jobs not done within the visibility timeout (a worker died).
OUTBOX_SWEEP_SECONDS = env_int("OUTBOX_SWEEP_SECONDS", 5)
# A dispatched job not done after this long is dispatched again (tasks are idempotent).
OUTBOX_VISIBILITY_SECONDS = env_int("OUTBOX_VISIBILITY_SECONDS", 60)
# A job is left this long to the dispatch after its commit before the sweeper sends it.
OUTBOX_DISPATCH_GRACE_SECONDS = env_int("OUTBOX_DISPATCH_GRACE_SECONDS", 2)
# After this many dispatches without finishing, a job is given up (failed, in the admin).
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 50)
# At most this many jobs are dispatched (and as many old done jobs removed) by one sweep.
OUTBOX_SWEEP_BATCH = env_int("OUTBOX_SWEEP_BATCH", 500)
# Done jobs are kept this long (the admin shows them), then removed by the sweeper.
OUTBOX_KEEP_DONE_HOURS = env_int("OUTBOX_KEEP_DONE_HOURS", 24)
CELERY_BEAT_SCHEDULE["outbox-sweep"] = {
    "task": "registry_portal.outbox.tasks.outbox_sweep",
    "schedule": OUTBOX_SWEEP_SECONDS,
    # Sweeps queued while no worker ran are dropped, not run one after another.
    "options": {"expires": max(OUTBOX_SWEEP_SECONDS * 2, 10)},
}
# --- end Outbox -----------------------------------------------------------------------------

# --- Observability (/metrics, /-/healthy, /-/ready) -------------------------------------------
# django-prometheus counts queries and connections through its wrappers of the backends.
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends.", 1
)
# /metrics: a scraper sending `Authorization: Bearer <METRICS_TOKEN>` is let in, and so is any
# address in METRICS_ALLOWED_NETWORKS (comma-separated addresses or CIDRs; loopback by
# default, empty for none).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = [
    item.strip()
    for item in os.environ.get("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128").split(",")
    if item.strip()
]
# /-/ready answers within this many seconds, whatever the database, broker or storage do.
HEALTH_READY_TIMEOUT = float(os.environ.get("HEALTH_READY_TIMEOUT", "2"))
# --- end Observability ----------------------------------------------------------------------

# --- Hostile input: layer reading caps (issue 11, part B) -----------------------------------
# Caps a real image may also reach: the reader stops (or skips the file), the report says
# which cap was hit in its notes and in `incomplete_reasons`, and gates treat that as missing
# data. Hardlinks count against SCAN_MAX_LINKS with symlinks; the kept bytes count the file
# contents kept for the catalogers and every path and link target kept for squashing.
SCAN_MAX_LINKS = env_int("SCAN_MAX_LINKS", 200_000)
SCAN_MAX_KEPT_BYTES = env_int("SCAN_MAX_KEPT_BYTES", 512 * 1024**2)
SCAN_MAX_FILE_BYTES = env_int("SCAN_MAX_FILE_BYTES", 64 * 1024**2)
# --- end Hostile input: layer reading caps --------------------------------------------------

# --- Throttled authentication (issue 11, part B) --------------------------------------------
# Failed password and personal-access-token checks are counted per client address and per
# username on every surface (/auth/token, Basic auth on /v2/, the login page, the admin, the
# API); past AUTH_THROTTLE_FAILURES within AUTH_THROTTLE_SECONDS of the last failure, the
# answer is 429 with Retry-After until those seconds pass. Counting is django-axes (README,
# "Throttled authentication"); `registry_portal.accounts.throttling` wires it in.
AUTH_THROTTLE_FAILURES = env_int("AUTH_THROTTLE_FAILURES", 10)
AUTH_THROTTLE_SECONDS = env_int("AUTH_THROTTLE_SECONDS", 900)
INSTALLED_APPS += ["axes"]
# Before django-prometheus's last middleware, which must see every response.
MIDDLEWARE.insert(len(MIDDLEWARE) - 1, "axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = [
    "registry_portal.accounts.throttling.ThrottledAuthenticationBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AUTH_THROTTLE_ENABLED", True)
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CACHE = "default"
AXES_FAILURE_LIMIT = AUTH_THROTTLE_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=AUTH_THROTTLE_SECONDS)
AXES_LOCKOUT_PARAMETERS = "registry_portal.accounts.throttling.lockout_parameters"
AXES_USERNAME_CALLABLE = "registry_portal.accounts.throttling.counted_username"
AXES_CLIENT_IP_CALLABLE = "registry_portal.accounts.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "registry_portal.lockout.lockout_response"
# A success must not clear what another address guessed against the same username.
AXES_RESET_ON_SUCCESS = False
AXES_ENABLE_ADMIN = False

# The cache every web process shares (the throttling counters live there): Redis when
# CACHE_URL, or else a Redis CELERY_BROKER_URL, points there; otherwise the database (the
# table `portal_cache`, created by `migrate`), which every process of one deployment sees.
# CACHE_URL=db:// asks for the database even with a Redis broker. Checked passwords are
# remembered in each process only (the "credentials" cache): they never leave it.
_cache_url = os.environ.get("CACHE_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "db://"
)
if _cache_url.startswith(("redis://", "rediss://")):
    # Redis down (often the broker's: issue 19): the database cache answers meanwhile.
    _shared_cache = {
        "BACKEND": "registry_portal.cache.RedisWithDatabaseFallback",
        "LOCATION": _cache_url,
        "KEY_PREFIX": "portal",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
elif _cache_url == "db://":
    _shared_cache = {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "portal_cache",
        # Room for many counters: a spray of usernames must not cull a victim's count.
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
else:
    raise ValueError(f"CACHE_URL must be redis://, rediss:// or db://, not {_cache_url!r}")
CACHES = {
    "default": _shared_cache,
    "credentials": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "portal-credentials",
    },
    # The shared cache's fallback while its Redis is down (registry_portal/cache.py); always
    # configured, so `migrate` always creates its table.
    "database": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "portal_cache",
        "KEY_PREFIX": "portal",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
}
# --- end Throttled authentication -----------------------------------------------------------

# --- Production settings (issue 11, part B) -------------------------------------------------
# Derived from PORTAL_URL, the one address clients use. `manage.py check --deploy` passes
# with PORTAL_URL=https://..., TRUSTED_PROXY_HEADERS and SECURE_HSTS_SECONDS set (README,
# "Production settings"; tests/test_production_settings.py lists the warnings we keep).
_portal_url = urlsplit(PORTAL_URL)
_portal_host = _portal_url.hostname or "localhost"
_portal_is_https = _portal_url.scheme == "https"
# Hosts this portal answers to: ALLOWED_HOSTS (comma-separated), else PORTAL_URL's host; a
# loopback PORTAL_URL (`make run`, the tests) answers to every loopback name.
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h] or (
    ["localhost", "127.0.0.1", "[::1]"]
    if _portal_host in {"localhost", "127.0.0.1", "::1"}
    else [_portal_host]
)
CSRF_TRUSTED_ORIGINS = [f"{_portal_url.scheme}://{_portal_url.netloc}"]
# Behind a reverse proxy that sets X-Forwarded-Proto and X-Forwarded-For itself (and drops
# what clients send in them): requests it forwarded over HTTPS count as secure, and the
# client address (throttling) is the last X-Forwarded-For entry. Never set it without one:
# clients could then claim HTTPS or any address.
TRUSTED_PROXY_HEADERS = env_bool("TRUSTED_PROXY_HEADERS")
if TRUSTED_PROXY_HEADERS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Over HTTPS the session and CSRF cookies are never sent in the clear.
SESSION_COOKIE_SECURE = _portal_is_https
CSRF_COOKIE_SECURE = _portal_is_https
# Plain-HTTP requests are redirected to HTTPS when the portal can tell them apart (behind a
# trusted proxy, or TLS in gunicorn); SECURE_SSL_REDIRECT=false leaves that to the proxy.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _portal_is_https and TRUSTED_PROXY_HEADERS)
# Health probes come from the load balancer over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^-/"]
# HSTS only when asked: once a browser has seen it, the name is HTTPS-only for that long.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0) if _portal_is_https else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
# --- end Production settings ----------------------------------------------------------------
