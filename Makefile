# The two commands of the README: `make book` and `make test`. Each sets up
# .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3.11
VENV   ?= .venv
PROFILE ?= book
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sepnb-installed

.PHONY: help setup test book notebooks sync bench clean
help:
	@echo "make test       set up .venv if needed, then run pytest --nbval (unit tests + smoke notebooks)"
	@echo "make book       set up .venv if needed, execute every notebook at PROFILE=$(PROFILE) into book/ and build _build/html"
	@echo "make notebooks  re-execute notebooks/*.ipynb from their .py at the smoke profile (how they are saved)"
	@echo "make sync       check that every notebooks/*.py and its .ipynb hold the same cells"
	@echo "make bench      throughput and peak memory of the priors (python -m sepnb.bench)"

setup: $(STAMP)
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e .
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest --nbval

book: $(STAMP)
	$(BIN)/python -m sepnb.book --profile $(PROFILE)

notebooks: $(STAMP)
	$(BIN)/python -m sepnb.book --save-notebooks

sync: $(STAMP)
	$(BIN)/pytest tests/test_notebook_sync.py -q

bench: $(STAMP)
	$(BIN)/python -m sepnb.bench

clean:
	rm -rf _build
