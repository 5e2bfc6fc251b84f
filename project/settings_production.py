"""Production settings: `DJANGO_SETTINGS_MODULE=project.settings_production`.

Everything of project.settings (all from the environment), plus what production must have and
refuses to run without: a real SECRET_KEY, explicit ALLOWED_HOSTS, PostgreSQL, a cache shared by
every web process (the throttle counts), HTTPS-only cookies and HSTS, whitenoise's compressed and
hashed static files. docs/DEPLOY.md lists the environment; .env.example is a sample.
"""

from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F401,F403
from .settings import CACHES, DATABASES, Q_CLUSTER, STORAGES, env

DEBUG = False

if not env("EMAIL_URL", default=""):  # no mail files piling up on a server: to standard error, as logs
    EMAIL_BACKEND = "project.mail.StderrEmailBackend"

SECRET_KEY = env("SECRET_KEY", default="")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith(("insecure", "django-insecure", "change-me")):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))')"
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the host names the service answers to")

if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL in production (postgres://...)")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # a connection broken by a database restart is replaced

if CACHES["default"]["BACKEND"].endswith("LocMemCache"):
    raise ImproperlyConfigured(
        "set REDIS_URL (or CACHE_URL, e.g. dbcache://integrations_cache after "
        "`manage.py createcachetable`): every web process must count the same throttle"
    )

# --- the broker: Redis (REDIS_URL), the ORM (default) or SQS (Q_BROKER=sqs) ------------------------
if env("Q_BROKER", default="") == "sqs":
    for key in ("redis", "orm"):
        Q_CLUSTER.pop(key, None)
    Q_CLUSTER["sqs"] = {"aws_region": env("AWS_REGION", default=env("AWS_S3_REGION_NAME", default="eu-west-1"))}
    # SQS's visibility timeout is django-q2's `retry`: an unacknowledged task is delivered again

# --- HTTPS (TLS ends at the load balancer, which sets X-Forwarded-Proto) ---------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# an orchestrator probes the process itself over plain HTTP, not through the TLS balancer
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- static files: served by whitenoise from STATIC_ROOT (collectstatic first) -------------------
STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
