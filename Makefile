# Coverage Planner: the two commands are `make app` and `make test` (see README).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist workers for `make test`: two cut the suite from 767–808 s serially to 484–621 s on CI's 2 cores;
# each worker starts its own Streamlit server for the browser tests. `make test TEST_WORKERS=0` runs serially.
TEST_WORKERS ?= 2

.PHONY: app test lint typecheck reliability bench-full browser clean

# setuptools reports every editable install as a warning block ("Editable installation. ...
# Please be careful with folders ... with the same name as your package"), which pip repeats
# as a BuildBackendWarning; PYTHONWARNINGS silences that one message for the install line only.
$(STAMP): pyproject.toml constraints.txt
	@echo "Installing Coverage Planner and its dependencies into $(VENV) (first time: a few minutes)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation." $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

## Launch the Streamlit app on the embedded default city (Chengdu). `browser` also installs the
## Chinese font that map.png / map.pdf need (and Chromium, for report.pdf); it returns at once when present.
app: $(STAMP) browser
	$(BIN)/python -m streamlit run app.py

## Run the whole test suite (lint, types, unit, CLI, app, browser, benchmark smoke).
test: $(STAMP) browser
	$(BIN)/ruff check coverage tests benchmarks app.py
	$(BIN)/ruff format --check coverage tests benchmarks app.py
	$(BIN)/mypy --no-incremental
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

browser:
	@bash scripts/install_chromium.sh

lint: $(STAMP)
	$(BIN)/ruff check coverage tests benchmarks app.py
	$(BIN)/ruff format --check coverage tests benchmarks app.py

typecheck: $(STAMP)
	$(BIN)/mypy

## Hostile inputs, properties, fault injection and concurrency only (fast subset).
reliability: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" tests/test_bad_inputs.py tests/test_properties.py tests/test_faults.py tests/test_concurrency.py

## Benchmarks at full size (10k/100k/300k nodes), stages and whole commands (bench_e2e.py); writes docs/bench/*.md and docs/BENCHMARKS.md.
bench-full: $(STAMP)
	$(BIN)/python benchmarks/run.py --sizes 10000,100000,300000 --write-docs --e2e
	$(BIN)/python benchmarks/assemble.py

clean:
	rm -rf $(VENV) .cache
