# The two commands: `make run` (the portal on SQLite and local disk) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test bench lint install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py load_demo
	BIN=$(BIN) ./scripts/run-portal.sh

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	@command -v skopeo >/dev/null && command -v docker-registry >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo docker-registry)
	$(BIN)/python -m benchmarks.run --repeat 3
	$(BIN)/python -m benchmarks.promotion
	$(BIN)/python -m benchmarks.scanning
	$(BIN)/python -m benchmarks.apply
