# Each target bootstraps .venv itself, starting from a bare machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-output

.PHONY: demo test lint bench install install-test system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# torch first: a CPU build lies on this disk; without it argostranslate pulls a GPU build.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Debian packages the tests drive for real: Dovecot (IMAP server for the e-mail tests) and
# Chromium (the web app's browser tests, driven by Playwright; never a downloaded browser).
# Installed only when missing.
SYSTEM_PACKAGES := $(if $(wildcard /usr/sbin/dovecot),,dovecot-imapd) $(if $(wildcard /usr/bin/chromium),,chromium)
system-deps:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ]; then \
	  echo "installing Debian packages: $(strip $(SYSTEM_PACKAGES))"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

demo: $(VENV)/.installed
	$(BIN)/gateway demo --dir $(DEMO_DIR)

test: $(VENV)/.installed-test system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

# Every benchmark in turn (figures in docs/benchmarks.md); scale_out needs the local PostgreSQL.
BENCHMARKS := fanout.py "fanout.py --linearity" dispatch.py email_smtp.py "email_smtp.py --starttls" \
	sms_twilio.py rate_limit.py inbound_webhooks.py scale_out.py
bench: $(VENV)/.installed-test
	@for b in $(BENCHMARKS); do echo "\$$ bench/$$b"; $(BIN)/python bench/$$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
