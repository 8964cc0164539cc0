# Centre Kiosk: `make run` to try it, `make test` to test it (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin
CATALOGUES := $(wildcard kiosk/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGUES:.po=.mo)

.PHONY: run run-hub test lint bench bench-sync install install-test system-deps translations messages clean

run: install translations
	$(BIN)/kiosk init
	$(BIN)/kiosk demo
	@echo "Centre Kiosk: http://$(HOST):$(PORT)/  (staff pages: http://$(HOST):$(PORT)/staff/)"
	@echo "The kiosk screens answer only a registered browser; open this link once in the kiosk's browser:"
	@$(BIN)/kiosk device enrol-url --name "演示终端" --base http://$(HOST):$(PORT)
	$(BIN)/kiosk serve --host $(HOST) --port $(PORT)

# scripts/postgres.sh starts a throwaway PostgreSQL cluster for the hub's tests and stops it after.
# PYTEST_WORKERS=auto runs the tests on pytest-xdist, one worker per core, each test file whole on
# one worker (--dist loadfile: a file's module fixtures, such as its hub process, are made once).
# Off (0: one process) until checked: under xdist the schemathesis test of the sync API reported
# one item instead of six (docs/benchmarks.md "Test suite wall time").
PYTEST_WORKERS ?= 0
test: install-test translations system-deps lint
	bash scripts/postgres.sh run $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# A local district hub with Xihu's centres (SQLite in instance-hub/: a demo, not production; see
# docs/sync.md for PostgreSQL and gunicorn). Then, on a kiosk: kiosk enrol CODE --hub http://HOST:HUB_PORT
HUB_PORT ?= 8100
HUB_INSTANCE ?= instance-hub
run-hub: install translations
	KIOSK_INSTANCE_PATH=$(HUB_INSTANCE) KIOSK_ROLE=hub $(BIN)/kiosk hub init
	KIOSK_INSTANCE_PATH=$(HUB_INSTANCE) KIOSK_ROLE=hub $(BIN)/kiosk hub demo
	@echo "Enrolment code for 翠苑一区 (XH-CY-CY1): $$(KIOSK_INSTANCE_PATH=$(HUB_INSTANCE) KIOSK_ROLE=hub $(BIN)/kiosk hub enrolment XH-CY-CY1)"
	@echo "District hub: http://$(HOST):$(HUB_PORT)/district/  then on the kiosk: $(BIN)/kiosk enrol CODE --hub http://$(HOST):$(HUB_PORT) && $(BIN)/kiosk sync"
	KIOSK_INSTANCE_PATH=$(HUB_INSTANCE) KIOSK_ROLE=hub $(BIN)/gunicorn --workers 2 --worker-class gthread --threads 4 --bind $(HOST):$(HUB_PORT) 'kiosk:create_app()'

# ruff (lint + format) over the code and tests, mypy over the typed core (config in pyproject).
lint: install-test
	$(BIN)/ruff check kiosk tests bench
	$(BIN)/ruff format --check kiosk tests bench
	$(BIN)/mypy

bench: install-test translations
	bash scripts/system-deps.sh bench
	$(BIN)/python bench/run.py
	$(BIN)/python bench/checkin.py
	$(BIN)/python bench/booking.py

# Sync and hub (issue 13): ingest vs COPY/executemany, a 60,000-event catch-up, 50 kiosks at
# once, the dashboard over 200 centres x a year; on a throwaway PostgreSQL (scripts/postgres.sh).
# The full fault run (50,000 events, 10 kills): bash scripts/postgres.sh run $(BIN)/python bench/sync_faults.py
bench-sync: install-test translations
	bash scripts/postgres.sh run $(BIN)/python bench/sync.py $(BENCH_ARGS)

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

system-deps:
	bash scripts/system-deps.sh test

translations: install $(COMPILED)

kiosk/translations/%/LC_MESSAGES/messages.mo: kiosk/translations/%/LC_MESSAGES/messages.po
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@ 2>&1 | grep -v '^compiling' || true

# After changing UI text: extract every string and merge it into the catalogues, then
# translate the new zh entries (tests fail while one is missing).
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l --ignore-dirs='.* .venv __pycache__ tests bench instance static node_modules' \
		--no-location --sort-output --omit-header -o kiosk/translations/messages.pot .
	$(BIN)/pybabel update -i kiosk/translations/messages.pot -d kiosk/translations --no-fuzzy-matching --ignore-obsolete --width 100

clean:
	rm -rf $(VENV) tests/artifacts .pytest_cache
