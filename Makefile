# `make demo` and `make test` do all the set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Exactly this torch: a CPU wheel that is on local disk here; any other spec may pull CUDA (GBs).
TORCH_PIN := torch==2.13.0

.PHONY: install demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m infra.demo

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy functions training infra

unit: install
	$(BIN)/pytest

test: lint typecheck unit

# aiaas against FastAPI, KServe, MLServer and BentoML (installed once into .venv-peers/), report
# in docs/benchmarks/. Needs wrk (apt-get install -y wrk). `make bench BENCH_ARGS=--quick`: short.
bench: install
	$(BIN)/python -m bench.compare $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .aiaas .pytest_cache .mypy_cache .ruff_cache
