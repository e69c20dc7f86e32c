# Each target bootstraps what it needs itself, starting from a bare machine with Python 3.11.
# Python packages come only from the lock files requirements.txt and requirements-dev.txt
# (every dependency pinned, with hashes);
# `make lock` re-resolves them on purpose.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-output
RUNTIME_LOCK := requirements.txt
DEV_LOCK := requirements-dev.txt

.PHONY: demo test lint bench bytecode install install-test system-deps wheel-check lock catalogs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Locked dependencies first (hash-checked), then the project itself without touching them,
# then its bytecode (as pip compiles an installed wheel): where PYTHONDONTWRITEBYTECODE is set,
# every command would otherwise compile the gateway's modules again (~0.13 s of each start).
$(VENV)/.installed: $(RUNTIME_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r $(RUNTIME_LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(MAKE) --no-print-directory bytecode
	touch $@

# The dev lock pins the CPU build of torch (argostranslate needs it): it lies on this disk.
$(VENV)/.installed-test: $(DEV_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(MAKE) --no-print-directory bytecode
	touch $(VENV)/.installed $@

# The checkout's own modules compiled now (again after editing them, before timing anything).
bytecode: | $(BIN)/python
	$(BIN)/python -m compileall -q gateway plugins

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Debian packages the tests drive for real, installed only when missing: Dovecot (IMAP server
# for the e-mail tests), Chromium (the web app's browser tests, driven by Playwright; never a
# downloaded browser), and the PostgreSQL and Redis servers, which the suite starts in a
# throwaway folder when none is running (gateway/testing/services.py).
PG_INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
SYSTEM_PACKAGES := $(if $(wildcard /usr/sbin/dovecot),,dovecot-imapd) \
	$(if $(wildcard /usr/bin/chromium),,chromium) \
	$(if $(PG_INITDB),,postgresql) \
	$(if $(wildcard /usr/bin/redis-server),,redis-server)
system-deps:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ]; then \
	  echo "installing Debian packages: $(strip $(SYSTEM_PACKAGES))"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(strip $(SYSTEM_PACKAGES)) >/dev/null; \
	fi

demo: $(VENV)/.installed
	$(BIN)/gateway demo --dir $(DEMO_DIR)

# ruff, the whole suite in random order (pytest-randomly), then the wheel outside the checkout.
test: $(VENV)/.installed-test system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory wheel-check

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

# Build the wheel, install it in a fresh virtualenv outside the checkout (locked dependencies),
# and run `gateway init` and `gateway demo` from an empty folder with it.
wheel-check: $(VENV)/.installed-test
	bash scripts/wheel-check.sh $(BIN)/python $(RUNTIME_LOCK)

# Re-resolve the lock files: `make lock` keeps every pin it can and adds what pyproject.toml
# now asks for; `make lock UPGRADE=1` moves everything to the newest releases. The runtime lock (requirements.txt)
# is the dev lock's subset (same versions): the dev lock's pins are its preferences.
LOCK_TOOL := uv==0.13.9
LOCK_VENV := .venv-lock
TORCH_SOURCE := $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu)
LOCK_FLAGS := --generate-hashes --python-version 3.11 --index-url https://pypi.org/simple $(TORCH_SOURCE) \
	--index-strategy unsafe-best-match --custom-compile-command "make lock" --quiet
lock:
	test -x $(LOCK_VENV)/bin/uv || ($(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q $(LOCK_TOOL))
	$(LOCK_VENV)/bin/uv pip compile pyproject.toml requirements/build.in --all-extras \
		--constraint requirements/constraints.txt $(if $(UPGRADE),--upgrade) $(LOCK_FLAGS) -o $(DEV_LOCK)
	cp $(DEV_LOCK) $(RUNTIME_LOCK)
	$(LOCK_VENV)/bin/uv pip compile pyproject.toml requirements/build.in $(LOCK_FLAGS) -o $(RUNTIME_LOCK)

# Extract the catalogs — what families read (gateway.pot) and the staff interface (web.pot) —
# from templates and code, and merge them into every language that has one.
LOCALES := gateway/resources/locales
catalogs: $(VENV)/.installed-test
	$(BIN)/pybabel -q extract -F babel.cfg --sort-output -o $(LOCALES)/gateway.pot .
	$(BIN)/pybabel -q update -D gateway -i $(LOCALES)/gateway.pot -d $(LOCALES)
	$(BIN)/pybabel -q extract --no-default-keywords -k S_ -F babel-web.cfg --sort-output -o $(LOCALES)/web.pot .
	$(BIN)/pybabel -q update -D web -i $(LOCALES)/web.pot -d $(LOCALES) --ignore-obsolete

# Every benchmark in turn (figures in docs/benchmarks.md); scale_out needs PostgreSQL.
BENCHMARKS := fanout.py "fanout.py --linearity" dispatch.py email_smtp.py "email_smtp.py --starttls" \
	sms_twilio.py rate_limit.py "rate_limit.py --messages 150 --chats 50 --burst 3" inbound_webhooks.py \
	scale_out.py translate.py peers.py startup.py
bench: $(VENV)/.installed-test bytecode
	@for b in $(BENCHMARKS); do echo "\$$ bench/$$b"; $(BIN)/python bench/$$b || exit 1; done

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(DEMO_DIR) .pytest_cache .ruff_cache build dist
