# Gatehouse — one workspace, several services. `make run` and `make test` each do all their set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
export UV_LINK_MODE := copy
PG_ADMIN := postgresql://postgres@127.0.0.1:5432/postgres
AUTH_DB := gatehouse_auth
BILLING_DB := gatehouse_billing
NOTIFICATION_DB := gatehouse_notification
DB_URL := postgresql+asyncpg://postgres@127.0.0.1:5432
PYTEST := $(UV) run --frozen pytest
TEST_FLAGS ?= -q -p no:cacheprovider

.PHONY: help install browser promtool services databases migrate seed test test-contracts test-platform test-auth lint format schemas run bench chaos rotate-keys create-admin clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Bytecode is compiled here, once: with PYTHONDONTWRITEBYTECODE set (as on this machine and in the
# images) Python never writes it, and every start would compile every module it imports again
# (seconds per service). uv compiles the dependencies; the workspace's own code is installed
# editable, so compileall does it (a source edited later is recompiled in memory until the next
# `make install`).
install:  ## install uv if missing, then every workspace member and dev tool from uv.lock, compiled to bytecode
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --all-packages --compile-bytecode --quiet
	@$(UV) run --frozen python -m compileall -q -j 0 $(wildcard */src)

browser: install  ## web/tests' browser: Debian's Chromium (apt-get, when missing) and axe-core (npm ci)
	@scripts/browser.sh
	@cd web/tests && npm ci --silent --no-audit --no-fund

promtool:  ## deploy/tests' promtool (Debian's prometheus package, unpacked into var/tools/ when missing)
	@scripts/promtool.sh >/dev/null

services:  ## check PostgreSQL, RabbitMQ and Redis; start any that has stopped
	@scripts/services.sh

databases: services install  ## create each service's database if missing
	@$(UV) run --frozen python scripts/create_databases.py $(AUTH_DB) $(BILLING_DB) $(NOTIFICATION_DB)

migrate: databases  ## apply every service's migrations
	@cd auth-service && AUTH_DATABASE_URL=$(DB_URL)/$(AUTH_DB) $(UV) run --frozen alembic upgrade head
	@cd billing-service && BILLING_DATABASE_URL=$(DB_URL)/$(BILLING_DB) $(UV) run --frozen alembic upgrade head
	@cd notification-service && NOTIFICATION_DATABASE_URL=$(DB_URL)/$(NOTIFICATION_DB) $(UV) run --frozen alembic upgrade head

test: install services browser promtool  ## every test suite (each makes and drops its own databases and vhosts)
	$(PYTEST) $(TEST_FLAGS) shared-contracts/tests
	$(PYTEST) $(TEST_FLAGS) shared-platform/tests
	$(PYTEST) $(TEST_FLAGS) bench/tests
	$(PYTEST) $(TEST_FLAGS) -n 2 auth-service/tests
	$(PYTEST) $(TEST_FLAGS) -n 2 notification-service/tests
	$(PYTEST) $(TEST_FLAGS) -n 2 billing-service/tests
	$(PYTEST) $(TEST_FLAGS) -n 2 gateway/tests
	$(PYTEST) $(TEST_FLAGS) emulators/tests
	$(PYTEST) $(TEST_FLAGS) -n 2 deploy/tests
	$(PYTEST) $(TEST_FLAGS) tests-e2e
	$(PYTEST) $(TEST_FLAGS) -n 2 --dist loadfile web/tests

lint: install  ## ruff and mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy shared-contracts/src shared-platform/src auth-service/src billing-service/src notification-service/src gateway/src emulators/src web/src

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

schemas: install  ## re-export the event JSON Schemas and AsyncAPI document
	$(UV) run --frozen gatehouse-export-schemas

seed: migrate  ## the admin (SEED_ADMIN_EMAIL / SEED_ADMIN_PASSWORD, generated into var/ when unset); the demo plans are seeded as billing starts
	@mkdir -p var/mail
	@AUTH_DATABASE_URL=$(DB_URL)/$(AUTH_DB) $(UV) run --frozen python scripts/seed.py

run: seed  ## run the whole system locally (gateway :8000, services, workers, emulators, SMTP catcher)
	@echo "  gateway (the front door): http://127.0.0.1:8000   API docs: http://127.0.0.1:8000/docs"
	@echo "  the pages (web, through the gateway): http://127.0.0.1:8000/register  http://127.0.0.1:8000/login"
	@echo "  passkeys need the pages at http://localhost:8000 (the RP ID is localhost; browsers refuse an IP)"
	@echo "  services: auth http://127.0.0.1:8001  billing http://127.0.0.1:8002  notifications http://127.0.0.1:8003  web http://127.0.0.1:8004"
	@echo "  Stripe emulator: http://127.0.0.1:12111   OAuth emulator: http://127.0.0.1:8090 (try http://127.0.0.1:8000/auth/google/login)   Pwned Passwords emulator: http://127.0.0.1:8091   CAPTCHA emulator: http://127.0.0.1:8092"
	@echo "  emails land in: $(CURDIR)/var/mail/new  (SMTP catcher on 127.0.0.1:1025)"
	@echo "  Ctrl-C stops everything."
	@$(UV) run --frozen honcho start -f Procfile -e local.env

bench: migrate  ## benchmarks; each prints a table
	$(UV) run --frozen python bench/auth_login.py
	$(UV) run --frozen python bench/notify_pipeline.py
	$(UV) run --frozen python bench/gateway.py
	$(UV) run --frozen python bench/web.py
	$(UV) run --frozen python bench/billing_webhooks.py
	$(UV) run --frozen python bench/startup.py
	$(UV) run --frozen python bench/summary.py

chaos: install services  ## fault drills against the system as `make run` starts it, behind proxies; prints the fault table
	$(UV) run --frozen python bench/chaos.py

rotate-keys: install  ## start signing with a new JWT key (old keys stay published until their tokens expire)
	$(UV) run --frozen auth-service rotate-keys

create-admin: install  ## create the first admin: make create-admin EMAIL=... (asks for the password)
	$(UV) run --frozen auth-service create-admin $(EMAIL)

clean:
	rm -rf .venv .mypy_cache .ruff_cache var
