# Two entry points: `make demo` trains the digits classifier, `make test` runs the test suite.
# Each creates the virtual environment .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean

$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77"
	$(PY) -m pip install -q -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-examples
	$(PY) -m fusion.examples.digits

test: $(VENV)/.installed-test
	$(PY) -m pytest -q -n 2

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check fusion tests benchmarks

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) out .pytest_cache
