# Two commands on a fresh machine:
#   make run    create .venv if missing, install, run the whole DVC pipeline
#   make test   create .venv if missing, install, run ruff, the import layers (import-linter), mypy and pytest
#   make bench  every benchmark, one JSON line each: features (vs DuckDB), shap (vs pred_contrib),
#               score, memory and dask, export (the nightly job vs ingest + features + score --input),
#               serve (the web app's first page at 50,000 leads vs 500, and the static board's size),
#               bootstrap (evaluate's bootstrap vs sklearn's roc_auc_score per round)
#               (make bench-features BENCH_ARGS="--leads 20000", bench-score SCORE_BENCH_ARGS=--quick,
#               bench-export EXPORT_BENCH_ARGS="--open 20000")
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
BENCH_ARGS ?=
SHAP_BENCH_ARGS ?=
SCORE_BENCH_ARGS ?=
EXPORT_BENCH_ARGS ?=
SERVE_BENCH_ARGS ?=
export PATH := $(BIN):$(PATH)

.PHONY: run lock test lint imports typecheck pytest venv bench bench-features bench-ingest bench-shap bench-score bench-export bench-serve bench-bootstrap bench-pipeline bench-ingest-memory mlflow-ui exps clean browser \
	test-browser

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: venv
	dvc repro
	dvc metrics show

# dvc.lock as a fresh clone's `make run` writes it, computed in a temporary copy (tools/fresh-lock.sh):
# run it after changing pipeline/, params.yaml or dvc.yaml, and commit dvc.lock with the change.
lock: venv
	tools/fresh-lock.sh

test: lint imports typecheck pytest

lint: venv
	ruff check .

# The house rule (pyproject.toml [tool.importlinter]): no layer of pipeline/ imports a higher one.
imports: venv
	lint-imports

typecheck: venv
	mypy

# Two workers, a test file each at a time (module fixtures stay in one process; session fixtures
# are built once per worker): the suite's wall time on 2 cores about halves.
PYTEST_WORKERS ?= 2
pytest: venv browser
	pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=12

# Debian's chromium and chromedriver for the lead board's browser test (apt, as root or via sudo -n);
# without them the test skips locally and fails under CI=true.
browser:
	tools/install-browser.sh || [ "$$CI" != "true" ]

test-browser: venv browser
	pytest -m browser tests/integration

# The bench extra (duckdb) is installed once, next to the dev install, with its own stamp.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: bench-features bench-ingest bench-shap bench-score bench-export bench-serve bench-bootstrap bench-pipeline \
	bench-ingest-memory

bench-features: venv $(BENCH_STAMP)
	$(BIN)/python benchmarks/features_bench.py $(BENCH_ARGS)

# leadscore ingest vs a DuckDB query reading, typing, joining and writing the same export (1M leads, ~20M events)
bench-ingest: venv $(BENCH_STAMP)
	$(BIN)/python benchmarks/ingest_bench.py $(INGEST_BENCH_ARGS)

# every stage at 5M leads / ~100M events, each stage's wall time and peak RSS (PIPELINE_BENCH_ARGS="--leads 200000")
bench-pipeline: venv
	$(BIN)/python benchmarks/pipeline_bench.py $(PIPELINE_BENCH_ARGS)

# ingest's peak RSS at 5M leads against 500k (INGEST_MEMORY_ARGS="--leads 1000000")
bench-ingest-memory: venv
	$(BIN)/python benchmarks/pipeline_bench.py --ingest-memory $(INGEST_MEMORY_ARGS)

bench-shap: venv
	$(BIN)/python benchmarks/shap_bench.py $(SHAP_BENCH_ARGS)

bench-score: venv
	$(BIN)/python benchmarks/score_bench.py $(SCORE_BENCH_ARGS)

bench-export: venv
	$(BIN)/python benchmarks/export_bench.py $(EXPORT_BENCH_ARGS)

# leadscore serve's first page at 50,000 leads (vs 500) and the static board's size
bench-serve: venv
	$(BIN)/python benchmarks/serve_bench.py $(SERVE_BENCH_ARGS)

# evaluate's bootstrap (exact, over one ranking) vs sklearn's roc_auc_score per round: same figures
bench-bootstrap: venv
	$(BIN)/python benchmarks/bootstrap_bench.py $(BOOTSTRAP_BENCH_ARGS)

mlflow-ui: venv
	mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

# The experiments side by side in 120 columns: the headline metrics and only the params that differ.
exps: venv
	dvc exp show --no-pager --only-changed

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
