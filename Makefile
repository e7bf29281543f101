# normrepro: every target sets up the venv first (once), then does its job.
#   make demo                      BN vs no BN on scikit-learn digits, ~1 min, writes results/demo/
#   make test                      the offline CPU test suite
#   make reproduce-<id> [SCALE=cpu|smoke|full] [JOBS=n] [ARGS="key=value ..."]
#   make plan-<id>                 print the jobs an experiment would run
#   make report-<id>               re-collect, re-judge and re-plot without training
#   make site                      the static results site from results/ into site/ (open site/index.html)
#   make test-browser              the site in headless Chromium (installs it first: make browser-deps)
# `make help` lists everything.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCALE ?= cpu
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
ARGS ?=
EXPERIMENTS := $(basename $(notdir $(filter-out configs/experiment/none.yaml,$(wildcard configs/experiment/*.yaml))))

# Parallel sweeps: Hydra's joblib launcher, one torch thread per job (two 1-thread jobs beat one 2-thread job
# here, docs/stack.md). JOBS=1 runs the jobs one after another with all cores each. A launcher named in ARGS
# (ARGS="hydra/launcher=slurm ...", docs/slurm.md) replaces it: each of its jobs gets cores of its own and
# uses them all (threads=0).
LAUNCH = $(if $(findstring hydra/launcher=,$(ARGS)),,$(if $(filter 1,$(JOBS)),threads=0,hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS) threads=1))

# syncbn's jobs start their own processes (torchrun, 1 thread each) and time their steps: one job at a time.
reproduce-syncbn reproduce-syncbn_precision: LAUNCH = threads=1
# whitening's claims 5-8 compare step times: one 1-thread job at a time, as its committed runs were made.
reproduce-whitening: LAUNCH = threads=1

.PHONY: help venv venv-check demo test test-unit test-integration test-all test-browser browser-deps site site-screenshot lint data sync benchmark benchmark-own benchmark-rnn benchmark-precision clean-runs $(addprefix reproduce-,$(EXPERIMENTS)) \
	$(addprefix plan-,$(EXPERIMENTS)) $(addprefix report-,$(EXPERIMENTS)) reproduce-all report-all plan-all

help:
	@sed -n 's/^#   //p' Makefile
	@echo "experiments: $(EXPERIMENTS)"
	@echo "other targets: venv lint data sync benchmark benchmark-own benchmark-rnn benchmark-precision test-all reproduce-all report-all plan-all clean-runs site site-screenshot browser-deps test-browser"

# .venv must be this checkout's own. One copied or linked from another checkout imports that checkout's code
# (its editable install points there), and installing into it would re-point the other checkout's venv: so
# every target first asks $(PY) where it imports normrepro from and stops with one line naming the fix when
# that is not this checkout's src/ (nothing to check before the venv exists, or before normrepro is installed).
VENV_OWNER = import importlib.util as u, os; s = u.find_spec("normrepro"); \
	print(os.path.realpath(os.path.dirname(os.path.dirname(s.origin))) if s and s.origin else "")
COMMA := ,
VENV_FIX = $(if $(filter $(VENV)/bin/python,$(PY)),rm -rf $(VENV) && make venv,drop PY=$(PY) to use this checkout's $(VENV)$(COMMA) or set PYTHONPATH=src)
VENV_WHERE = $(shell test -x $(PY) && { $(PY) -c '$(VENV_OWNER)' 2>/dev/null || echo BROKEN; })
venv_check = $(if $(filter BROKEN,$(1)),$(error $(PY) does not run (a venv copied from another machine or folder?): $(VENV_FIX)))$\
	$(if $(filter-out BROKEN $(realpath src),$(1)),$(error $(PY) imports normrepro from $(1), not from this checkout's $(CURDIR)/src (a venv of another checkout): $(VENV_FIX)))
venv-check:
	@$(call venv_check,$(VENV_WHERE))

$(STAMP): pyproject.toml | venv-check
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m normrepro.train -m experiment=demo $(LAUNCH) $(ARGS)
	$(PY) -m normrepro.analysis demo $(ARGS)

# Both tiers (unit, then integration) and the 15 slowest tests.
test: $(STAMP)
	$(PY) -m pytest -m "unit and not slow and not gpu"
	$(PY) -m pytest -m "integration and not slow and not gpu" --durations=15

test-unit: $(STAMP)
	$(PY) -m pytest -m "unit and not slow and not gpu"

test-integration: $(STAMP)
	$(PY) -m pytest -m "integration and not slow and not gpu" --durations=15

test-all: $(STAMP)
	$(PY) -m pytest -m ''

# The browser tier: Chromium from Debian's packages if missing; skipped, with the reason, where they cannot be
# installed (no apt-get, not root and no passwordless sudo), so CI on such a machine still passes. Only the
# browser test files are collected (collecting the whole suite would cost more than the tests).
BROWSER_TESTS := tests/test_site.py
test-browser: $(STAMP)
	@if bash scripts/browser_deps.sh; then NORMREPRO_REQUIRE_BROWSER=1 $(PY) -m pytest -m browser -rs --durations=5 $(BROWSER_TESTS); \
	else echo "test-browser: SKIPPED: no chromium/chromedriver and they could not be installed (reason above)"; fi

browser-deps:
	bash scripts/browser_deps.sh

lint: $(STAMP)
	$(PY) -m ruff check src tests scripts benchmarks

$(addprefix reproduce-,$(EXPERIMENTS)): reproduce-%: $(STAMP)
	$(PY) -m normrepro.train -m experiment=$* scale=$(SCALE) $(LAUNCH) $(ARGS)
	$(PY) -m normrepro.analysis $* --scale $(SCALE) $(ARGS)

reproduce-all: $(addprefix reproduce-,$(EXPERIMENTS))

# every experiment's jobs and estimated compute (measured per-step costs), and the suite's total vs its budget
plan-all: $(STAMP)
	$(PY) scripts/plan.py --all --scale $(SCALE)

report-all: $(addprefix report-,$(EXPERIMENTS))

$(addprefix report-,$(EXPERIMENTS)): report-%: $(STAMP)
	$(PY) -m normrepro.analysis $* --scale $(SCALE) $(ARGS)

$(addprefix plan-,$(EXPERIMENTS)): plan-%: $(STAMP)
	$(PY) scripts/plan.py $* --scale $(SCALE) $(ARGS)

site: $(STAMP)
	$(PY) -m normrepro.site --results results --out site

# docs/site-index.png: the index of the committed results in headless Chromium (needs make browser-deps)
site-screenshot: $(STAMP)
	$(PY) scripts/site_screenshot.py docs/site-index.png

data: $(STAMP)
	$(PY) scripts/download_data.py

# Upload the offline wandb runs (needs a network and `wandb login`).
sync: $(STAMP)
	find runs -type d -name 'offline-run-*' -print0 | xargs -0 -r $(VENV)/bin/wandb sync

benchmark: $(STAMP)
	$(PY) benchmarks/loop_throughput.py

# OWN's forward+backward time vs plain weights (cpu-scale own_cifar network), writes benchmarks/own_results.md
benchmark-own: $(STAMP)
	$(PY) benchmarks/own_overhead.py

benchmark-rnn: $(STAMP)
	$(PY) benchmarks/rnn_cells.py

# the VGG CNN's training step in fp32 vs bf16 autocast, with and without channels_last: benchmarks/precision_results.md
benchmark-precision: $(STAMP)
	$(PY) benchmarks/precision.py

clean-runs:
	rm -rf runs
