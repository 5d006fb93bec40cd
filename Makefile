# convscope developer entry points. `make demo` and `make test` do all the set-up.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONVSCOPE := $(BIN)/convscope
# The stamp's name carries a hash of everything that decides the environment,
# so a second `make setup` with nothing changed takes a moment.
SETUP_HASH := $(shell cat pyproject.toml requirements-torch.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.setup-$(SETUP_HASH)
# pip on this machine warns about every local index entry it skips; keep the log readable.
QUIET_PIP := { grep -v '^WARNING: Location' || true; }

.PHONY: help setup frontend test test-fast demo lint data browser clean

help:
	@echo "make demo       set up, then run the main job: the architecture study into demo-out/"
	@echo "make test       set up, then run the whole test suite"
	@echo "make test-fast  the suite without the slow end-to-end tests"
	@echo "make lint       ruff check + format check"
	@echo "make setup      build .venv (pinned torch/torchvision, then convscope[dev]) and the dashboard"
	@echo "make frontend   build the dashboard's front end (frontend/ -> src/convscope/serve/static/)"

setup: $(STAMP) frontend

$(STAMP): pyproject.toml requirements-torch.txt
	@echo "==> building $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet -r requirements-torch.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | $(QUIET_PIP)
	$(MAKE) --no-print-directory data browser
	rm -f $(VENV)/.setup-*
	touch $@
	@echo "==> $(VENV) ready"

# The dashboard's front end (TypeScript, built by Vite) lands inside the package, which
# serves it and ships it in the wheel; the build is not committed, so a fresh clone makes
# it here. File rules keep a second `make setup` from rebuilding or reinstalling anything.
FRONTEND_INDEX := src/convscope/serve/static/index.html
FRONTEND_DEPS := frontend/node_modules/.ci-stamp
frontend: $(FRONTEND_INDEX)

# npm ci installs exactly the committed lock file; it runs again only when the lock changes.
$(FRONTEND_DEPS): frontend/package-lock.json
	@command -v npm >/dev/null || { echo "the dashboard's front end needs Node >= 20.19 and npm" >&2; exit 1; }
	@echo "==> npm ci in frontend/"
	cd frontend && npm ci --no-audit --no-fund
	touch $@

$(FRONTEND_INDEX): $(FRONTEND_DEPS) frontend/package.json frontend/package-lock.json frontend/index.html \
		frontend/vite.config.ts frontend/tsconfig.json $(shell find frontend/src -type f)
	@echo "==> building the dashboard into src/convscope/serve/static/"
	cd frontend && npm run build --silent

# Debian packages Fashion-MNIST; install it when missing and apt can be used.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then \
		echo "==> Fashion-MNIST: Debian package present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "==> installing Debian's dataset-fashion-mnist"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null \
		|| echo "apt-get failed: convscope will download Fashion-MNIST, or run 'convscope data fetch fashion-mnist --from DIR'"; \
	else \
		echo "Fashion-MNIST: no Debian package; convscope downloads it on first use," \
			"or run 'convscope data fetch fashion-mnist --from DIR' with the four IDX files"; \
	fi

# The report's browser test drives Debian's Chromium with Playwright (which cannot
# download its own browser here); MP4 animations need ffmpeg.
browser:
	@if [ -x /usr/bin/chromium ] && command -v ffmpeg >/dev/null; then \
		echo "==> Chromium and ffmpeg: present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "==> installing Debian's chromium and ffmpeg for the browser and animation tests"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg >/dev/null 2>&1 \
		  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg >/dev/null; }; } \
		|| echo "apt-get failed: the tests need /usr/bin/chromium and ffmpeg"; \
	else \
		echo "Chromium or ffmpeg missing and apt unusable: the browser and MP4 tests need them"; \
	fi

# The front end's unit tests (Vitest, a few seconds) run first: they fail fast.
test: setup
	cd frontend && npm test --silent
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi; \
	exit $$status

test-fast: setup
	cd frontend && npm test --silent
	$(BIN)/python -m pytest -m "not slow"

# The study of the architectures reference, sized for about 6 minutes on 2 cores:
# a stratified 24,000-image subset of Fashion-MNIST (19,200 train / 4,800 validation),
# 5 epochs of batch 500 per model, `hidden` recorded on 1,000 probe images.
DEMO_OUT := demo-out
demo: setup
	$(CONVSCOPE) data fetch fashion-mnist
	$(CONVSCOPE) study --epochs 5 --subset 24000 --store $(DEMO_OUT)/runs --out $(DEMO_OUT)/study
	$(CONVSCOPE) runs list --store $(DEMO_OUT)/runs
	$(CONVSCOPE) report architectures --store $(DEMO_OUT)/runs --out $(DEMO_OUT)/report.html
	@echo "==> the study report: $$(realpath $(DEMO_OUT)/report.html)"
	@echo "==> open its runs in the dashboard: convscope serve --store $(DEMO_OUT)/runs"

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo-out frontend/node_modules src/convscope/serve/static
