# galtaxa: the whole set-up on a fresh machine is `make demo` or `make test`.
# Both create the virtual environment (.venv) on first use and install galtaxa into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.galtaxa-installed
DEMO_DIR ?= galtaxa-demo
DOCS_OUT ?= docs/_build/html
DOCS_STAMP := $(VENV)/.galtaxa-docs-installed
RELEASE_STAMP := $(VENV)/.galtaxa-release-installed
# pytest-xdist workers: the default test run fits in 15 min on 2 cores
WORKERS ?= 2

.PHONY: demo test test-slow test-all browser benchmarks docs wheel wheel-check clean help

help:
	@echo "make demo       - install (first time) and run the demo into $(DEMO_DIR)/"
	@echo "make test       - install (first time) and run the default test suite"
	@echo "make test-slow  - the slow tests only"
	@echo "make benchmarks - the benchmark scripts (writes benchmarks/RESULTS.md)"
	@echo "make docs       - the documentation site into $(DOCS_OUT)/ (warnings are errors)"
	@echo "make wheel      - the sdist and the wheel into dist/, checked with twine"
	@echo "make wheel-check - the wheel installed away from the checkout runs 'galtaxa demo --fast'"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/galtaxa demo --out $(DEMO_DIR)

# On CI (CI=true, root, Debian) the browser tests get a real headless Chromium (Playwright drives it by path);
# elsewhere that test is skipped with its reason when no Chromium is installed.
browser:
	@if [ -n "$$CI" ] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian chromium for the browser tests (report, galtaxa inspect via Playwright)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "chromium could not be installed: the browser tests will be skipped"; \
	fi

test: $(STAMP) browser
	$(PY) -m pytest -m "not slow" -n $(WORKERS) --dist loadfile

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

test-all: $(STAMP) browser
	$(PY) -m pytest -n $(WORKERS) --dist loadfile

benchmarks: $(STAMP)
	$(PY) benchmarks/run_all.py

# The documentation site (Sphinx + numpydoc + MyST, pyproject's `docs` extra). Every build starts from a fresh
# environment (-E): the config, command-line and API pages are generated from the code at build time.
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -E -q -b html docs $(DOCS_OUT)
	@echo "documentation: $(DOCS_OUT)/index.html"

# The sdist and the wheel (pyproject's `release` extra: build, twine), their metadata and README checked.
$(RELEASE_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[release]'
	touch $(RELEASE_STAMP)

wheel: $(RELEASE_STAMP)
	rm -rf dist build
	$(PY) -m build --outdir dist .
	$(PY) -m twine check --strict dist/*

# The wheel away from the checkout: installed without its dependencies (the venv has them) into a temporary
# folder and run from another one, so every file galtaxa reads must come from the wheel.
wheel-check: wheel
	scripts/check_wheel.sh $(PY) dist/galtaxa-*.whl

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache build dist src/*.egg-info docs/_build
