# `make demo` and `make test` do all the set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Exactly this torch: a CPU wheel that is on local disk here; any other spec may pull CUDA (GBs).
TORCH_PIN := torch==2.13.0

.PHONY: install demo test lint typecheck unit bench soak clean sam-cli sam-validate template build package deploy

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
	$(BIN)/mypy functions training infra bench

# The template and deploy tests run the real SAM CLI (sam validate, build, package), so it is
# installed first. Two workers (pytest-xdist), grouped as tests/conftest.py says, then the tests
# of `sam build`'s output alone. The slowest tests are listed: the suite is held to CI's budget.
unit: install sam-cli
	AIAAS_SAM_CLI=$(SAM) $(BIN)/pytest -n 2 --dist loadgroup -m "not sam_build" --durations=25
	AIAAS_SAM_CLI=$(SAM) $(BIN)/pytest -m sam_build --durations=5

test: lint typecheck unit

# The SAM CLI pins boto3 and pydantic below ours, so it lives in its own venv.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
$(SAM):
	$(PY) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli

sam-cli: $(SAM)

sam-validate: install $(SAM)
	AIAAS_SAM_CLI=$(SAM) $(BIN)/pytest -q tests/infra/test_template_checks.py -k sam_validate

# --- deploy (docs/deploy.md). `sam build` installs arm64 wheels with python3.12's pip: pyenv's
# 3.12 when there is one, else python3.12 on PATH. The region is your AWS configuration's.
PY312_DIR ?= $(dir $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12)))
SAM_RUN := PATH="$(PY312_DIR):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM)
PACKAGED := .aws-sam/packaged.yaml

# Rewrites the per-model resources after Metadata.Models or infra/model_resources.yaml changed.
template: install
	$(BIN)/python -m infra.model_resources --write

build: install $(SAM)
	$(BIN)/python -m infra.model_resources --check
	$(SAM_RUN) build

# Uploads the bundle to PACKAGE_BUCKET and writes $(PACKAGED); any S3-compatible server works:
#   make package PACKAGE_BUCKET=my-bucket AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000
# Checked when make reads this file, so a missing bucket stops it before the install and build.
ifneq ($(filter package,$(MAKECMDGOALS)),)
ifeq ($(PACKAGE_BUCKET),)
$(error make package needs PACKAGE_BUCKET=<bucket>)
endif
endif
package: build
	$(SAM_RUN) package --s3-bucket "$(PACKAGE_BUCKET)" --output-template-file $(PACKAGED)

# samconfig.toml: stack "aiaas", CAPABILITY_IAM, a SAM-managed artifacts bucket unless
# PACKAGE_BUCKET is given. Parameters: make deploy DEPLOY_ARGS="--parameter-overrides AlarmEmail=me@example.com"
deploy: build
	$(SAM_RUN) deploy $(if $(PACKAGE_BUCKET),--s3-bucket "$(PACKAGE_BUCKET)" --no-resolve-s3) $(DEPLOY_ARGS)

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
