# livestrap: `make demo` builds and activates the default image; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LIVESTRAP_DATA_DIR ?= /var/lib/livestrap
export LIVESTRAP_DATA_DIR

# Debian packages the builder and the tests run for real.
APT_PACKAGES := mmdebstrap squashfs-tools dpkg-dev apt-utils gnupg debian-archive-keyring \
	initramfs-tools-core zstd xz-utils lz4 kmod util-linux ca-certificates

.PHONY: all deps system-deps venv lint unit integration e2e test demo bench clean

all: test

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

deps: system-deps venv

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m unit -q

integration: deps
	$(BIN)/pytest -m integration -q

e2e: deps
	$(BIN)/pytest -m e2e -q

test: deps lint
	$(BIN)/pytest -m "unit or integration or e2e" --durations=10

demo: deps
	$(BIN)/livestrap build --activate
	$(BIN)/livestrap images list

bench: deps
	$(BIN)/python bench/build_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
