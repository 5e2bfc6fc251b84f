# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-sqlite test-postgres lint bench proto clean

$(VENV)/.installed: requirements.txt $(wildcard client/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	@if [ -f client/pyproject.toml ]; then $(PIP) install -q -e ./client; fi
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py collectstatic --noinput -v0
	@echo "Serving on http://$(HOST):$(PORT)/admin/ and http://$(HOST):$(PORT)/api/v1/ (Ctrl-C stops both)"
	@trap 'kill 0' INT TERM EXIT; \
	  $(PY) manage.py qcluster & \
	  $(PY) manage.py runserver $(HOST):$(PORT) --noreload & \
	  wait

# The whole suite on SQLite; again on PostgreSQL when DATABASE_URL points to one.
test: install
	$(VENV)/bin/ruff check .
	env -u DATABASE_URL $(PY) -m pytest -q $(PYTEST_ARGS)
	@if echo "$$DATABASE_URL" | grep -q '^postgres'; then \
	  echo "=== PostgreSQL: $$DATABASE_URL"; $(PY) -m pytest -q $(PYTEST_ARGS); fi

# Regenerate the protobuf modules of the server and the client from the one .proto file.
proto: install
	$(PY) -m grpc_tools.protoc -Iintegrations/proto --python_out=integrations/proto integrations/proto/batch.proto
	@if [ -d client/src/integrations_client/proto ]; then \
	  $(PY) -m grpc_tools.protoc -Iintegrations/proto --python_out=client/src/integrations_client/proto integrations/proto/batch.proto; fi

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) db.sqlite3* test_db.sqlite3* var staticfiles

# Peak memory of the Python client syncing 1,000,000 records to a live local server (target < 200 MB).
.PHONY: bench-client
bench-client: install
	$(PY) bench/client_memory.py
