"""Settings of the integrations service, read from the environment (SPEC section 10).

Zero-setup default: SQLite in WAL mode plus the django-q2 ORM broker. Production: DATABASE_URL
(PostgreSQL), REDIS_URL (broker and cache), AWS_STORAGE_BUCKET_NAME (S3), EMAIL_URL.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEBUG = env.bool("DEBUG", default=False)
# the "django-insecure-" prefix makes `check --deploy` flag this default (security.W009)
SECRET_KEY = env("SECRET_KEY", default="django-insecure-development-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "integrations",
    "catalog",
    "crm",
]

MIDDLEWARE = [
    # first: every later line of the request, including a security refusal, carries the request id
    "integrations.logcontext.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

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
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; IMMEDIATE transactions take the
    # write lock up front so two writers queue on the busy timeout instead of failing with
    # "database is locked" at the first write.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 60,
    }
    # A file, not memory, so live servers and worker processes in tests see the same data.
    DATABASES["default"]["TEST"] = {"NAME": env("SQLITE_TEST_DB", default=str(BASE_DIR / "test_db.sqlite3"))}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttle counts) ----------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if env("CACHE_URL", default=""):
    CACHES = {"default": env.cache("CACHE_URL")}
elif REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background work (django-q2) -------------------------------------------------------------
Q_CLUSTER = {
    "name": env("Q_CLUSTER_NAME", default="integrations"),
    "workers": env.int("Q_WORKERS", default=2),
    "recycle": 50,
    # A task may run this long; the ORM broker re-delivers an unacknowledged task after `retry`,
    # which must exceed `timeout` or a slow task would run twice at once.
    "timeout": env.int("Q_TIMEOUT", default=1800),
    "retry": env.int("Q_RETRY", default=1900),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 500,
    # How long the ORM broker's pusher sleeps when the queue is empty: each task of a run's chain
    # (complete -> start -> validate -> apply) waits up to this long to be picked up. 0.05 s: the
    # zero-setup default's sync of 200,000 records ends ~0.3 s sooner than with django-q2's 0.2 s, for
    # one indexed query every 50 ms while idle: the idle cluster then uses ~5 % of a core instead of
    # ~1 % (measured: 0.93 s against 0.25 s of CPU in 20 s). The Redis broker blocks on its list instead.
    "poll": env.float("Q_POLL", default=0.05),
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"  # explicit: without a broker key django-q2 tries Redis
# Webhooks may be sent by a cluster of their own (a queue of its own on the same broker), so that slow
# receivers never hold a worker of the runs: set INTEGRATIONS_WEBHOOK_CLUSTER (e.g.
# "integrations-webhooks") for every process and start `Q_QUEUE=webhooks manage.py qcluster` beside
# the runs' cluster (the Procfile, `make run`, `make serve-prod` do). Unset, the one cluster sends them
# too (a delivery is bounded by INTEGRATIONS_WEBHOOK_TIMEOUT either way), so a single `qcluster` works.
INTEGRATIONS_WEBHOOK_CLUSTER = env("INTEGRATIONS_WEBHOOK_CLUSTER", default="")
if env("Q_QUEUE", default="runs") == "webhooks":
    if not INTEGRATIONS_WEBHOOK_CLUSTER:
        raise ImproperlyConfigured(
            "Q_QUEUE=webhooks starts the webhook cluster: set INTEGRATIONS_WEBHOOK_CLUSTER "
            "(the same value for every process), e.g. integrations-webhooks"
        )
    Q_CLUSTER.update(
        cluster_name=INTEGRATIONS_WEBHOOK_CLUSTER,  # the queue it consumes; `name` (the signing salt) stays
        workers=env.int("Q_WEBHOOK_WORKERS", default=2),
        # a task is one try (at most INTEGRATIONS_WEBHOOK_TIMEOUT) or the due retries (45 s budget)
        timeout=120,
        retry=150,
        label="Webhook queue",
    )

# --- Files ----------------------------------------------------------------------------------
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "file_overwrite": True,
            "default_acl": None,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": env("STATICFILES_BACKEND", default="django.contrib.staticfiles.storage.StaticFilesStorage")
    },
}

# --- E-mail ---------------------------------------------------------------------------------
if env("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:  # development: one file per message under var/mail/ (`make run` prints the path), not 79 MIME
    # lines between the real output; production settings print them to standard error instead
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="integrations@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Uploads: the batch endpoint streams its own limit (INTEGRATIONS_MAX_BATCH_BYTES) ---------
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

# --- REST framework: nothing here. The integrations app sets its own policies on its views and its
# schema settings on its schema views (SPEC section 12); a host's REST_FRAMEWORK is its own business.

# --- Security (production: DEBUG false, HTTPS in front) --------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logs: plain lines, or LOG_FORMAT=json for one JSON object a line (SPEC section 14) ---------
# The context filter puts request_id, task, run_id, integration, customer and batch_seq on every
# record handled while a request or a task is (integrations/logcontext.py).
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "integrations.logcontext.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(task)s %(run_id)s "
            "%(integration)s %(customer)s %(batch_seq)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
    "loggers": {"integrations": {"level": env("LOG_LEVEL", default="INFO")}},
}

# --- Error tracking: SENTRY_DSN turns sentry-sdk on; without it, it is never imported ------------
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        release=env("SENTRY_RELEASE", default=None),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,  # API keys and customer e-mails stay out of the events
    )


# --- The integrations app: every INTEGRATIONS_* setting may come from the environment -----------
# The app reads only Django settings (integrations/conf.py holds the defaults and parses strings);
# this demo service maps each variable that is set onto the setting of the same name.
from integrations.conf import SETTING_NAMES  # noqa: E402  (no Django access at import)

# Where the service answers: `make run` and gunicorn.conf.py listen on HOST:PORT, and the links of
# e-mails, webhooks and printed hints follow them unless INTEGRATIONS_BASE_URL says otherwise (a
# public name behind a proxy). A wildcard address is no address to link to: loopback instead.
HOST, PORT = env("HOST", default="127.0.0.1"), env("PORT", default="8000")
_link_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(HOST, f"[{HOST}]" if ":" in HOST else HOST)
INTEGRATIONS_BASE_URL = f"http://{_link_host}:{PORT}"

vars().update({name: env.str(name) for name in SETTING_NAMES if name in env.ENVIRON})
