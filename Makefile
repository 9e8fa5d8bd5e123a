# The README's two commands: `make demo` runs the main job, `make test` runs the tests.
# Each bootstraps a local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

DOCS_STAMP := $(VENV)/.docs-stamp

.PHONY: demo test venv book benchmarks clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m tinylm.demo

test: $(STAMP)
	TINYLM_FAST=1 $(PY) -m pytest

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,docs]"
	touch $(DOCS_STAMP)

# the book: every chapter notebook executed, warnings are errors
book: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -b html book book/_build/html
	@echo "open book/_build/html/index.html"

benchmarks: $(STAMP)
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis book/_build book/chapters
