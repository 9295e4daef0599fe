# `make demo` and `make test` do all the set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Exactly this torch: a CPU wheel that is on local disk here; any other spec may pull CUDA (GBs).
TORCH_PIN := torch==2.13.0

.PHONY: install demo test lint typecheck unit bench soak clean sam-validate

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# pip byte-compiles what it installs, but not an editable install's own modules; with
# PYTHONDONTWRITEBYTECODE set (as here) every `aiaas` start would compile them again (~17 ms of
# `aiaas serve`'s cold start). compileall skips what is up to date.
install: $(STAMP)
	@$(BIN)/python -m compileall -q functions infra training bench > /dev/null

demo: install
	$(BIN)/python -m infra.demo

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy functions training infra

unit: install
	$(BIN)/pytest

test: lint typecheck unit sam-validate

# The SAM CLI pins boto3 and pydantic below ours, so it lives in its own venv; the test runs
# `sam validate --lint` on template.yaml (cfn-lint and the offline SAM transform run in `unit`).
SAM_VENV := .venv-sam
$(SAM_VENV)/bin/sam:
	$(PY) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli

sam-validate: install $(SAM_VENV)/bin/sam
	AIAAS_SAM_CLI=$(SAM_VENV)/bin/sam $(BIN)/pytest -q tests/infra/test_template_checks.py -k sam_validate

# aiaas against FastAPI, KServe, MLServer and BentoML (installed once into .venv-peers/), report
# in docs/benchmarks/. Needs wrk (apt-get install -y wrk). `make bench BENCH_ARGS=--quick`: short.
bench: install
	$(BIN)/python -m bench.compare $(BENCH_ARGS)

# 10,000 requests at concurrency 64 through aiaas serve (p99, RSS) and a 1,000,000-row batch with
# 1% bad rows; figures in docs/reliability.md. CI runs tests/soak at a reduced size.
soak: install
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) .aiaas .pytest_cache .mypy_cache .ruff_cache
