# One entry point for newcomers and CI. `make run` starts Corral, `make test` checks it.
.PHONY: setup setup-tests run test lint pytest bench bench-compare dist clean

setup:
	@bash scripts/setup.sh

# What only the tests need on top: Chromium for the browser tests, axios for a JS client.
setup-tests:
	@CORRAL_SETUP_TESTS=1 bash scripts/setup.sh

run: setup
	@bash scripts/run.sh

lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

# The whole suite, slow, fault and browser tests included, on PYTEST_WORKERS xdist workers:
# each takes one test file at a time, the files holding slow tests first
# (tests/xdist_units.py). Most of a test's time is spent waiting on servers, workers and
# jobs it started, so more workers than the two cores CI has still pay. Python's bytecode
# cache is turned back on where the environment turns it off (PYTHONDONTWRITEBYTECODE):
# each of the hundreds of `corral` processes the tests start would compile the package
# again, and each worker would rewrite every test module.
PYTEST_WORKERS ?= 3

pytest: setup-tests
	PYTHONDONTWRITEBYTECODE= .venv/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: lint pytest

bench: setup
	.venv/bin/python bench/dispatcher.py
	.venv/bin/python bench/worker.py
	.venv/bin/python bench/logins.py
	.venv/bin/python bench/dashboard.py

# Corral against Celery + Redis on this machine (installs redis-server and a Celery venv).
bench-compare: setup
	.venv/bin/python bench/vs_celery.py

# The wheel a host that only runs Corral installs (scripts/install.sh, docs/deploy.md).
dist: setup
	@bash scripts/dist.sh

clean:
	rm -rf .venv dist build corral-data .mypy_cache .ruff_cache .pytest_cache .hypothesis
