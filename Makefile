# livestrap: `make demo` builds and activates the default image; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LIVESTRAP_DATA_DIR ?= /var/lib/livestrap
export LIVESTRAP_DATA_DIR

# Debian packages the builder and the tests run for real. They are installed with a
# policy-rc.d that refuses every start: no packaged daemon (nginx on :80, PostgreSQL)
# starts by itself; the tests start their own on 127.0.0.1. lintian checks the master's .deb
# and systemd-container's nspawn boots it in a Debian 12 tree (tests/integration/test_deb_install.py).
APT_PACKAGES := mmdebstrap squashfs-tools dpkg-dev apt-utils gnupg debian-archive-keyring \
	initramfs-tools-core zstd xz-utils lz4 kmod util-linux ca-certificates openssl curl \
	qemu-system-x86 ipxe-qemu ipxe ovmf socat dnsmasq-base iproute2 postgresql nginx-light \
	chromium chromium-driver lintian systemd-container shim-signed grub-efi-amd64-signed \
	haproxy
# PostgreSQL for the API tests' second pass and the discovery benchmark: a local server on
# 127.0.0.1; scripts/test-postgres.sh runs a command with LIVESTRAP_TEST_POSTGRES set to a
# throwaway role (random password, no superuser) that owns one database; both are dropped
# when the command ends.
WITH_PG := scripts/test-postgres.sh

.PHONY: all deps system-deps venv lock deb lint unit integration e2e test test-postgres postgres demo demo-stop bench bench-page bench-smoke clean

all: test

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		policy=/usr/sbin/policy-rc.d; made=; \
		if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' >$$policy; chmod 755 $$policy; made=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		rc=$$?; [ -z "$$made" ] || rm -f $$policy; exit $$rc; \
	fi

# The venv installs exactly requirements.lock (every version pinned, every file checked by
# its sha256), then livestrap itself without resolving anything again. `make lock` remakes
# the lock from pyproject.toml's ranges (a deliberate upgrade; commit the result).
PIP_VERSION := 26.3
UV_VERSION := 0.13.8
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q pip==$(PIP_VERSION)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

lock:
	[ -x .venv-lock/bin/uv ] || { $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q uv==$(UV_VERSION); }
	.venv-lock/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --no-header \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock
	.venv-lock/bin/uv pip compile pyproject.toml --generate-hashes --no-header \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements-runtime.lock

venv: $(BIN)/.installed

# The master as dist/livestrap_<version>_amd64.deb (a private venv in /opt/livestrap made by
# /usr/bin/python3.11 from requirements-runtime.lock, units, default config): see the README's
# "Install on a provisioning master". DEB_VERSION overrides the version (an upgrade test).
DEB_VERSION ?=
deb: venv
	$(BIN)/python -m livestrap.packaging.master_deb --out dist $(if $(DEB_VERSION),--version $(DEB_VERSION))

deps: system-deps venv

lint: venv
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m unit -q

integration: deps
	$(BIN)/pytest -m integration -q

e2e: deps
	$(BIN)/pytest -m e2e -q

test: deps lint
	$(BIN)/pytest -m "unit or integration or e2e" --durations=15
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory bench-smoke

# The master's API and console tests again, on PostgreSQL (skipped, saying why, if it cannot start;
# in CI, CI=true, that fails instead).
test-postgres: system-deps
	$(WITH_PG) $(BIN)/pytest tests/api tests/console -q

# Starts the local cluster (and drops the superuser `livestrap` older runs left).
postgres: system-deps
	$(WITH_PG) true

demo: deps
	scripts/demo.sh

# Stops the demo's virtual nodes and its master (by the PID demo.sh wrote), and waits for them.
demo-stop: venv
	-$(BIN)/livestrap vm stop
	@pidfile=$(LIVESTRAP_DATA_DIR)/master.pid; [ -f $$pidfile ] || exit 0; pid=$$(cat $$pidfile); \
	if ! tr '\0' ' ' </proc/$$pid/cmdline 2>/dev/null | grep -q 'livestrap serve'; then \
		echo "no master running (stale $$pidfile)"; rm -f $$pidfile; exit 0; fi; \
	kill $$pid; for i in $$(seq 1 60); do kill -0 $$pid 2>/dev/null || break; sleep 0.25; done; \
	if kill -0 $$pid 2>/dev/null; then echo "master (pid $$pid) still stopping after 15 s"; exit 1; fi; \
	echo "master stopped (pid $$pid)"; rm -f $$pidfile

# The whole benchmark (~20 min, root): writes bench/results.json and docs/benchmarks.md.
BENCH_SCRIPTS := build_bench boot_bench bootpath_bench serve_bench discovery_bench multimaster_bench peer_bench console_bench action_bench
bench: deps
	set -e; for b in $(BENCH_SCRIPTS); do $(WITH_PG) $(BIN)/python bench/$$b.py; done

# Re-render docs/benchmarks.md from bench/results.json (after editing a section's text).
bench-page: venv
	cd bench && ../$(BIN)/python -c 'import report; report.save_results(report.load_results())'

# The same harness with tiny sizes and no peer build, into a temporary folder: CI runs it.
BENCH_SMOKE := size_bench serve_bench discovery_bench multimaster_bench console_bench action_bench
bench-smoke: deps
	set -e; out=$$(mktemp -d /tmp/livestrap-bench-smoke.XXXXXX); export LIVESTRAP_BENCH_OUT=$$out; \
	for b in $(BENCH_SMOKE); do $(WITH_PG) $(BIN)/python bench/$$b.py --smoke; done; \
	cat $$out/benchmarks.md; rm -rf $$out

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache dist build
