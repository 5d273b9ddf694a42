# Two commands on a fresh machine with Python 3.11:
#   make run   – set up everything and start Steward on http://127.0.0.1:8501
#   make test  – set up everything (browser and PostgreSQL included) and run lint and every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Model card exports are validated against the Model Card Toolkit schema when a copy sits beside the project.
STEWARD_MODEL_CARD_SCHEMA ?= $(wildcard $(abspath ../shared/reference/model_card.schema.json))
export STEWARD_MODEL_CARD_SCHEMA

.PHONY: help setup run test lint system-packages sample-data bench clean

help:
	@echo "make run    set up and start Steward on http://127.0.0.1:8501"
	@echo "make test   set up and run lint and all tests (installs chromium, postgresql, poppler-utils and the"
	@echo "            DejaVu fonts the PDF reports embed, if missing)"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# The virtual environment comes only from the lock file, on the machine's Python.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced

run: setup
	$(VENV)/steward migrate
	$(VENV)/streamlit run app/server.py

system-packages:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

lint: setup
	$(VENV)/ruff check .

test: setup system-packages lint
	$(VENV)/python -m pytest

sample-data: setup
	$(VENV)/python sample_data/generate.py

clean:
	rm -rf .venv .tools out
