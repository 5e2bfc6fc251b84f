# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
# the settings read them too: the links printed, e-mailed and sent in webhooks use this port
export HOST PORT

.PHONY: install run test test-fast test-sqlite test-postgres lint bench proto clean

$(VENV)/.installed: requirements.txt $(wildcard client/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	@if [ -f client/pyproject.toml ]; then $(PIP) install -q -e ./client; fi
	touch $@

install: $(VENV)/.installed

# Seeds once (a second `make run` keeps the data and the key), then serves on HOST:PORT
# (`make run PORT=8101`); Ctrl-C stops the worker, the webhook worker and the server (project/devrun.py).
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py seed_crm
	$(PY) manage.py collectstatic --noinput -v0
	@echo "Serving on http://$(HOST):$(PORT)/ (admin: /admin/, API: /api/v1/); Ctrl-C stops all three"
	@$(PY) -m project.devrun

# Lint, then the whole suite on SQLite; again on PostgreSQL when DATABASE_URL points to one.
test: lint
	env -u DATABASE_URL $(PY) -m pytest -q $(PYTEST_ARGS)
	@if echo "$$DATABASE_URL" | grep -q '^postgres'; then \
	  echo "=== PostgreSQL: $$DATABASE_URL"; $(PY) -m pytest -q $(PYTEST_ARGS); fi

# Regenerate the protobuf modules of the server and the client from the one .proto file.
proto: install
	$(PY) -m grpc_tools.protoc -Iintegrations/proto --python_out=integrations/proto integrations/proto/batch.proto
	@if [ -d client/src/integrations_client/proto ]; then \
	  $(PY) -m grpc_tools.protoc -Iintegrations/proto --python_out=client/src/integrations_client/proto integrations/proto/batch.proto; fi

# The inner loop (under 2 minutes): SQLite, without the tests marked slow or browser and without
# tests/faults (real processes, PostgreSQL only). `make test` still runs everything.
test-fast: install
	env -u DATABASE_URL $(PY) -m pytest -q -m "not slow and not browser" --ignore=tests/faults $(PYTEST_ARGS)

# Style, formatting and types: ruff's rules, `ruff format` (line length and quotes from pyproject.toml),
# mypy with django-stubs on the app (integrations/; settings in [tool.mypy]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/engine.py

# From the client's sync() to its return, through gunicorn and a real cluster, on SQLite (the zero-setup
# default) and PostgreSQL, against plain SQL in the same run (E2E_RECORDS, default 200,000; bench/e2e.py).
.PHONY: bench-e2e
bench-e2e: install
	$(PY) bench/e2e.py

clean:
	rm -rf $(VENV) db.sqlite3* test_db.sqlite3* var staticfiles

# Peak memory of the Python client syncing 1,000,000 records to a live local server (target < 200 MB).
.PHONY: bench-client
bench-client: install
	$(PY) bench/client_memory.py

# --- Production shape (docs/DEPLOY.md): gunicorn + two django-q2 clusters, from the environment.
# Needs DATABASE_URL (PostgreSQL) and REDIS_URL (or CACHE_URL for the ORM broker), e.g.
#   make serve-prod DATABASE_URL=postgres://postgres@127.0.0.1:5432/integrations REDIS_URL=redis://127.0.0.1:6379/0
# SECRET_KEY defaults to a fresh random one per start here (set it in .env for a real deployment).
PROD_ENV = DJANGO_SETTINGS_MODULE=project.settings_production \
  SECRET_KEY="$${SECRET_KEY:-$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')}" \
  ALLOWED_HOSTS="$${ALLOWED_HOSTS:-127.0.0.1,localhost}" SECURE_SSL_REDIRECT="$${SECURE_SSL_REDIRECT:-false}" \
  INTEGRATIONS_WEBHOOK_CLUSTER="$${INTEGRATIONS_WEBHOOK_CLUSTER:-integrations-webhooks}" \
  HOST=$(HOST) PORT=$(PORT)
.PHONY: serve-prod test-faults load
serve-prod: install
	@export $(PROD_ENV); \
	  $(PY) manage.py migrate --noinput && $(PY) manage.py collectstatic --noinput -v0 && \
	  $(PY) manage.py check --deploy && \
	  echo "gunicorn on http://$(HOST):$(PORT)/, two django-q2 clusters and the webhook cluster (Ctrl-C stops all)" && \
	  trap 'kill 0' INT TERM EXIT; \
	  $(VENV)/bin/gunicorn -c gunicorn.conf.py project.wsgi & \
	  $(PY) manage.py qcluster & \
	  $(PY) manage.py qcluster & \
	  Q_QUEUE=webhooks $(PY) manage.py qcluster & \
	  wait

# The fault tests alone (they also run in the PostgreSQL pass of `make test`): real processes, kill -9.
test-faults: install
	@echo "$$DATABASE_URL" | grep -q '^postgres' || { echo "test-faults needs DATABASE_URL=postgres://..."; exit 2; }
	$(PY) -m pytest -q -s tests/faults $(PYTEST_ARGS)

# Load test (not in CI): 20 clients of 10 customers posting 10,000-record batches for 2 minutes against
# the production shape on loopback; figures into docs/RELIABILITY.md.
load: install
	$(PY) bench/load.py
