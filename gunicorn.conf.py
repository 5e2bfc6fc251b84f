"""gunicorn settings of the production shape, all from the environment (see docs/DEPLOY.md).

    gunicorn -c gunicorn.conf.py project.wsgi

Sync workers: a batch request is short (read the body, store it, one INSERT; validation happens
in the django-q2 workers), so a few processes per core keep a machine busy. Scale web machines
out behind a load balancer; each is stateless (database, broker, cache and storage are shared).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND") or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# WEB_CONCURRENCY is the common name for "web processes per machine" (Heroku, Render, Dokku, ...)
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
worker_class = "sync"
# a 50,000-record batch of 64 MiB on a slow uplink takes a while to arrive; nothing else is slow
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 120))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
# recycle workers now and then: bounds the memory a long-lived process may accumulate
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 2000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 200))
# the heartbeat file lives in memory, not on a (possibly slow or full) disk
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# the app is imported once in the master, then forked (Django opens no connection at import)
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() in ("1", "true", "yes")
# X-Forwarded-* are trusted only from the load balancer's addresses
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None  # "-" for stdout
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
proc_name = os.environ.get("GUNICORN_PROC_NAME", "integrations-web")
