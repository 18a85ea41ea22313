# Every target that needs Python creates .venv on first use, so both `make run` and
# `make test` work on a fresh machine with nothing but python3 (>= 3.11) installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck simulator bench soak clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## run the gateway on its embedded defaults (SQLite, sandbox, embedded simulator)
	$(BIN)/pesagate serve

# Test processes: the suite waits on servers, subprocesses and databases, so more processes
# than cores pay off, until the cores are saturated (on 2 cores, one run each, 2026-12-06:
# 4 took 4:16 and 6 took 4:16 with idle CPU left at 4; earlier 6, 8 and 10 took 5:25, 5:35 and
# 5:35). `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 6

# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): every
# test process, and each `pesagate serve` a test starts, would otherwise compile the gateway
# and rewrite the tests' asserts again (~4 CPU-seconds per test process).
test: $(STAMP)  ## run the whole test suite (SQLite and PostgreSQL) in parallel processes
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

simulator: $(STAMP)  ## run the Daraja simulator on its own
	$(BIN)/pesagate simulator

bench: $(STAMP)  ## benchmarks (not part of make test); QUICK=1 for a 2-minute SQLite run
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run $(if $(QUICK),--quick,)

soak: $(STAMP)  ## payments under faults and process kills vs M-Pesa's ground truth (PostgreSQL); QUICK=1 for 200
	$(if $(QUICK),QUICK=1,) $(BIN)/python -m soak.run

lint: $(STAMP)  ## ruff (lint and formatting of everything that is Python), architecture contracts
	$(BIN)/ruff check src tests bench soak
	$(BIN)/ruff format --check src tests bench soak
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)  ## mypy --strict over src
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
