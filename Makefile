# Docker for AI services — entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON  ?= python3
VENV    := .venv
STATE   := .state
# An active conda environment created from environment.yml (`conda activate genai-course`) is
# used as it is, instead of building .venv; any other environment (conda's base too) is not.
CONDA_ENV := $(shell sed -n 's/^name: *//p' environment.yml)
ifneq ($(and $(CONDA_PREFIX),$(filter $(CONDA_ENV),$(notdir $(CONDA_PREFIX)))),)
PY      := $(CONDA_PREFIX)/bin/python
ENV_STAMP := $(STATE)/conda-$(CONDA_ENV).stamp
ENV_CREATE := test -x $(PY) || { echo "venv: $(PY) is missing: recreate the env from environment.yml" >&2; exit 1; }
else
PY      := $(VENV)/bin/python
ENV_STAMP := $(STATE)/venv.stamp
ENV_CREATE := test -x $(PY) || $(PYTHON) -m venv $(VENV)
endif
PORT    ?= 8888
EX      ?=
HINTS   ?=
MODEL_DIR := models/all-MiniLM-L6-v2
# Hash locks generated from requirements/*.in by `make lock`; the learner's environment is
# course + export, and `make test` adds dev (pytest, schemathesis, Playwright).
LOCKS   := requirements/course.txt requirements/export.txt requirements/locks.py
PYTEST_ARGS ?=

.PHONY: help lab lab-instructor grade test test-unit test-deps lint engine images model venv venv-dev lock bench bench-peers clean exercises start

# The instructor workflow (nbgrader) lives in its own file.
-include mk/*.mk

help: ## List the targets
	@echo "Docker for AI services — make targets"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(ENV_STAMP): $(LOCKS) pyproject.toml
	@mkdir -p $(STATE)
	@$(ENV_CREATE)
	@echo "venv: installing the course's Python packages into $$($(PY) -c 'import sys; print(sys.prefix)')"
	@$(PY) requirements/locks.py install course export
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(ENV_STAMP:.stamp=-dev.stamp): $(ENV_STAMP) requirements/dev.txt
	@$(PY) requirements/locks.py install dev
	@touch $@

venv: $(ENV_STAMP) ## Create the Python environment (.venv, or the active conda env genai-course) from the locks
venv-dev: $(ENV_STAMP:.stamp=-dev.stamp) ## The same plus the test and lock tools (make test installs them)

lock: venv-dev ## Regenerate the hash locks requirements/*.txt from requirements/*.in and service/requirements.txt
	@$(PY) requirements/locks.py lock

engine: ## Make a Docker engine with Compose v2 and Buildx reachable (installs it as root on Debian)
	@bash scripts/engine.sh

images: engine ## Provide python:3.11-slim and postgres:15 (pull, or build labelled stand-ins offline)
	@bash scripts/images.sh

model: venv ## Export all-MiniLM-L6-v2 to ONNX (fp32 + int8) into models/, with reference embeddings
	@$(PY) service/model/export.py --out $(MODEL_DIR)

exercises: venv ## Copy the service's code (app/, requirements.txt) into exercise folders that build it
	@$(PY) -m grader sync

start: venv ## Put exercise EX=<id>'s missing files in place: your own earlier files, else checkpoints (never over a file)
	@test -n "$(EX)" || { echo "make start: say which exercise, e.g. make start EX=05-compose" >&2; exit 2; }
	@$(PY) -m grader start $(EX)

lab: venv engine images model exercises ## Start JupyterLab on the first lesson (PORT=8888)
	@$(PY) -m course.lab --port $(PORT)

lab-instructor: venv engine images model exercises ## JupyterLab with nbgrader's instructor tools (formgrader, Create Assignment)
	@$(PY) -m course.lab --instructor --port $(PORT)

grade: venv engine images model exercises ## Grade every exercise, or one with EX=<id>; HINTS=all shows every hint
	@# Lost points (exit 1) are the learner's result, not a make failure; exit 2 (cannot grade) is.
	@$(PY) -m grader grade-all $(if $(EX),--only $(EX)) $(if $(HINTS),--hints $(HINTS)) || test $$? -eq 1

test: venv-dev lint engine images model exercises test-deps ## The whole test suite, lint included (provisions everything it needs)
	@$(PY) -m pytest $(PYTEST_ARGS)

lint: venv-dev ## Lint (ruff), formatting of the bottom layer (ruff format) and types (mypy)
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check dockerkit tests/dockerkit/test_loopback_proxy.py tests/course/test_layers.py
	@$(PY) -m mypy

test-deps: ## What only the tests need: Debian's chromium for the browser test, redis-server for the grading queue's tests
	@bash scripts/browser-deps.sh
	@bash scripts/redis.sh install

test-unit: venv-dev model exercises ## Fast tests that need no Docker engine
	@$(PY) -m pytest -m "not docker" $(PYTEST_ARGS)

# The service as the image installs it, and the peer it is measured against (infinity-emb,
# with torch): each in its own environment under .state/, never in the course's.
BENCH_ENVS := $(STATE)/bench-service/.stamp $(STATE)/bench-peers/.stamp
$(STATE)/bench-service/.stamp: service/requirements.txt
	@test -x $(@D)/bin/python || $(PYTHON) -m venv $(@D)
	@$(@D)/bin/python -m pip install -q --disable-pip-version-check --no-deps -r $<
	@touch $@
$(STATE)/bench-peers/.stamp: requirements/bench-peers.txt
	@test -x $(@D)/bin/python || $(PYTHON) -m venv $(@D)
	@echo "bench: installing infinity-emb into $(@D) (bench only)"
	@$(@D)/bin/python -m pip install -q --disable-pip-version-check -r $<
	@touch $@

bench: venv engine images model $(BENCH_ENVS) ## Benchmarks: service throughput/latency, image sizes, grading times, peers
	@$(PY) -m bench

bench-peers: venv model $(BENCH_ENVS) ## The service against infinity-emb and ONNX Runtime's own limit (python -m bench peers)
	@$(PY) -m bench peers

clean: ## Remove every Docker resource the course created (by label); keeps base images and your data
	@bash scripts/clean.sh
