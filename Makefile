# TrialGuard: `make demo` runs it, `make test` proves it. Both start what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
KAFKA_PORT ?= 9092
export KAFKA_PORT

.PHONY: help setup lint test test-unit test-integration demo demo-stop bench-dashboard kafka-up kafka-secure-up kafka-down kafka-fetch schemas bench bench-live soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/trialguard: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else "Python 3.11 or 3.12 is needed (durable-rules does not build on 3.13); set PYTHON=")'
	$(PYTHON) -m venv $(VENV)
	@mkdir -p .cache
	$(BIN)/pip install -q --upgrade pip > .cache/pip.log 2>&1 || { cat .cache/pip.log; exit 1; }
	$(BIN)/pip install -e '.[dev]' > .cache/pip.log 2>&1 || { cat .cache/pip.log; exit 1; }
	@touch $@

setup: $(BIN)/trialguard ## create .venv and install TrialGuard with its dev tools

kafka-fetch: ## fetch the Kafka broker jars with Maven into .cache/ (once)
	scripts/kafka.sh fetch

kafka-up: ## start the local single-node Kafka on 127.0.0.1:$(KAFKA_PORT)
	scripts/kafka.sh up

kafka-secure-up: ## start a secured local Kafka: SCRAM users and ACLs per component (README, Secured deployment)
	scripts/kafka.sh secure-up

kafka-down: ## stop the local Kafka started by kafka-up
	scripts/kafka.sh down

lint: setup ## ruff, mypy (strict on contracts/, protocol/, events/) and the layering contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contracts protocol events services tests bench
	$(BIN)/lint-imports

test-unit: setup ## the pure core and the contract, no broker
	$(BIN)/pytest tests/unit

test-integration: setup kafka-fetch ## against a real broker that the tests start themselves
	$(BIN)/pytest tests/integration

test: lint ## the whole suite: lint, type-check, unit and integration (starts its own Kafka)
	scripts/kafka.sh fetch
	$(BIN)/pytest

demo: setup ## Kafka, rules service, notifier, dashboard, a cohort simulated live; prints the URL and the login
	scripts/demo.sh

demo-stop: ## stop what `make demo` started: simulators, dashboard, notifier, rules service, Kafka
	scripts/demo.sh stop

bench: setup ## replay benchmark: 1M simulated events, full pipeline vs parse-only, peak memory
	$(BIN)/python bench/replay.py

bench-live: setup kafka-up ## live benchmark: service vs raw transactional pass-through, latency at 1,000 events/s
	$(BIN)/python bench/live.py

soak: setup kafka-fetch ## soak run on a broker of its own: 30 min of mixed load, kills, RSS/lag/latency slopes (SOAK_ARGS=--minutes 3)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

bench-dashboard: setup ## dashboard read model: filtered list queries over 100,000 findings
	$(BIN)/python bench/dashboard.py

schemas: setup ## regenerate contracts/schemas/ from the models
	$(BIN)/trialguard contracts schemas

clean: demo-stop ## remove the virtual environment and caches (not the Kafka jars)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .cache/kafka/run .cache/demo
