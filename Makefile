# The two commands of the README: `make book` and `make test`. Each sets up
# .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3.11
VENV   ?= .venv
PROFILE ?= book
# training processes of `make book`'s first step (the CPU cores shared out among them)
JOBS   ?= 2
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sepnb-installed
LOCK   := requirements.lock
UV     := uv==0.13.8

.PHONY: help setup test lint book notebooks sync bench lock clean
help:
	@echo "make test       set up .venv if needed, then run pytest --nbval (unit tests + smoke notebooks)"
	@echo "make book       set up .venv if needed, train the runs the store lacks (JOBS=$(JOBS) at a time), execute every notebook at PROFILE=$(PROFILE) into book/ and build _build/html"
	@echo "make lint       ruff: lint and format check (the rules are in pyproject.toml); CI runs it"
	@echo "make notebooks  re-execute notebooks/*.ipynb from their .py at the smoke profile (how they are saved)"
	@echo "make sync       check that every notebooks/*.py and its .ipynb hold the same cells"
	@echo "make bench      throughput and peak memory of the priors (python -m sepnb.bench)"
	@echo "make lock       re-resolve $(LOCK) (the whole dependency tree, hashed) from pyproject.toml with uv"

# The environment is installed from the lock file alone: every package of the tree pinned and
# hash-checked (--require-hashes), nothing resolved at install time (--no-deps); then the
# package itself, editable.
setup: $(STAMP)
$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (3.11.5 or later) or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

lock: $(STAMP)
	$(BIN)/python -m pip install -q $(UV)
	$(BIN)/uv pip compile pyproject.toml --extra book --extra test --universal --python-version 3.11.5 \
		--generate-hashes -o $(LOCK)

test: $(STAMP)
	$(BIN)/pytest --nbval

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# First every run the chapters need that the store lacks, JOBS processes at a time (two one-thread
# processes train more steps per second than one two-thread process on a 2-core CPU), then the chapters.
book: $(STAMP)
	$(BIN)/python -m sepnb train --profile $(PROFILE) --all --jobs $(JOBS)
	$(BIN)/python -m sepnb.book --profile $(PROFILE)

notebooks: $(STAMP)
	$(BIN)/python -m sepnb.book --save-notebooks

sync: $(STAMP)
	$(BIN)/pytest tests/test_notebook_sync.py -q

bench: $(STAMP)
	$(BIN)/python -m sepnb.bench

clean:
	rm -rf _build
