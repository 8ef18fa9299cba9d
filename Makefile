# lossgrad: `make serve` and `make test` set up .venv from nothing, then act.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall only when the dependencies may have changed.
INSTALLED := $(VENV)/.installed-dev

.PHONY: help serve test lint openapi bench figures

help:
	@echo "make serve    set up $(VENV) and serve on 127.0.0.1:8000"
	@echo "make test     set up $(VENV), then lint, type-check and run the tests"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make openapi  regenerate openapi/openapi.json from the app"
	@echo "make bench    run the benchmark suite and print its table (a few minutes)"
	@echo "make figures  redraw docs/sigmoid-and-bce.png from the service's answers"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The docs extra (matplotlib) too, so that the figure's test draws it.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -e '.[dev,docs]'
	touch $@

serve: $(INSTALLED)
	$(BIN)/lossgrad serve --host 127.0.0.1 --port 8000

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

openapi: $(INSTALLED)
	$(BIN)/python -m service.openapi

bench: $(INSTALLED)
	$(BIN)/python -m bench

figures: $(INSTALLED)
	$(BIN)/python docs/plot_figures.py
