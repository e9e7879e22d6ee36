# stethoscope: build, test and benchmark entry points.
#
#   make demo                       .venv + `stethoscope demo` (Ctrl+C to stop)
#   make test                       chromium, ruff, mypy, pytest on every CPython 3.10-3.13
#   make test PYTHONS="3.12"        only some interpreters
#   make test PYTEST_ARGS="-k foo"  extra pytest arguments
#   make lint / make typecheck      ruff / mypy alone
#   make bench                      benchmark table, bounded cost, load (bench-table, -bounded, -load: one)
#   make clean                      remove virtualenvs and caches (keeps bench/results)
#
# The logic lives in scripts/; any python3 can run them.

PYTHON3 ?= python3
VENV    := .venv

# Settings such as PYTHONS, PYTEST_ARGS or BENCH_RUNS reach the scripts through the
# environment: make exports variables given on its command line by itself.

.PHONY: demo test lint typecheck bench bench-table bench-bounded bench-load clean help

help:
	@sed -n '3,10p' Makefile | sed 's/^# \{0,1\}//'

# The stamp is rebuilt (pip install -e . again) when pyproject.toml or the C
# accelerator changes; the editable install picks up Python changes under src/.
$(VENV)/.stethoscope-stamp: pyproject.toml src/stethoscope/_speedups.c scripts/hatch_build.py
	@if ! $(VENV)/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then \
	    rm -rf $(VENV); \
	    py="$$($(PYTHON3) scripts/pythons.py default)" && \
	    echo "creating $(VENV) with $$py" && \
	    "$$py" -m venv $(VENV); \
	fi
	$(VENV)/bin/python -m pip --disable-pip-version-check install --progress-bar off -q -e .
	@touch $@

demo: $(VENV)/.stethoscope-stamp
	$(VENV)/bin/stethoscope demo

test:
	$(PYTHON3) scripts/run_tests.py test

lint:
	$(PYTHON3) scripts/run_tests.py lint

typecheck:
	$(PYTHON3) scripts/run_tests.py typecheck

bench:
	$(PYTHON3) scripts/bench.py

bench-table:
	$(PYTHON3) scripts/bench.py table

bench-bounded:
	$(PYTHON3) scripts/bench.py bounded

bench-load:
	$(PYTHON3) scripts/bench.py load

clean:
	rm -rf $(VENV) .venv-test .venv-bench build dist src/*.egg-info src/stethoscope/_speedups*.so \
	    .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
