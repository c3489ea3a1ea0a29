# Docker for AI services — entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STATE   := .state
PORT    ?= 8888
EX      ?=
MODEL_DIR := models/all-MiniLM-L6-v2
REQS    := requirements/course.txt requirements/export.txt service/requirements.txt
PYTEST_ARGS ?=

.PHONY: help lab grade test test-unit test-deps engine images model venv bench clean exercises

# The instructor workflow (nbgrader) lives in its own file.
-include mk/*.mk

help: ## List the targets
	@echo "Docker for AI services — make targets"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STATE)/venv.stamp: $(REQS) pyproject.toml
	@mkdir -p $(STATE)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "venv: installing the course's Python packages into $(VENV)"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements/export.txt -r requirements/course.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(STATE)/venv.stamp ## Create the Python environment (.venv) from requirements/

engine: ## Make a Docker engine with Compose v2 and Buildx reachable (installs it as root on Debian)
	@bash scripts/engine.sh

images: engine ## Provide python:3.11-slim and postgres:15 (pull, or build labelled stand-ins offline)
	@bash scripts/images.sh

model: venv ## Export all-MiniLM-L6-v2 to ONNX (fp32 + int8) into models/, with reference embeddings
	@$(PY) service/model/export.py --out $(MODEL_DIR)

exercises: venv ## Copy the service's shared files (app/, requirements.txt) into exercise folders that need them
	@$(PY) -m grader sync

lab: venv engine images model exercises ## Start JupyterLab on the first lesson (PORT=8888)
	@$(PY) -m course.lab --port $(PORT)

grade: venv engine images model exercises ## Grade every exercise, or one with EX=<id>
	@# Lost points (exit 1) are the learner's result, not a make failure; exit 2 (cannot grade) is.
	@$(PY) -m grader grade-all $(if $(EX),--only $(EX)) || test $$? -eq 1

test: venv engine images model exercises test-deps ## The whole test suite (provisions everything it needs)
	@$(PY) -m pytest $(PYTEST_ARGS)

test-deps: ## What only the tests need: Debian's chromium for the browser test
	@bash scripts/browser-deps.sh

test-unit: venv model exercises ## Fast tests that need no Docker engine
	@$(PY) -m pytest -m "not docker" $(PYTEST_ARGS)

bench: venv engine images model ## Benchmarks: service throughput/latency, image sizes, grading times
	@$(PY) -m bench

clean: ## Remove every Docker resource the course created (by label); keeps base images and your data
	@bash scripts/clean.sh
