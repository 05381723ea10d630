# mnist-serve: the README's commands. `make help` lists them.
PY := .venv/bin/python
MODEL ?= cnn
export MNIST_ROOT ?= $(abspath ../shared/mnist)

.PHONY: help setup run stop test test-unit lint format train evaluate archives eval-sets bench-robustness bench-perf gpu-check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup:  ## create .venv with the pinned requirements (idempotent)
	@scripts/setup.sh

run: setup  ## start TorchServe (both models) and the web UI on the committed weights
	@$(PY) -m scripts.run

stop:  ## stop what `make run` started
	@$(PY) -m scripts.torchserve_ctl stop

test: setup  ## the whole suite: lint, unit, integration (real TorchServe), browser (real Chromium)
	@scripts/setup.sh --browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

test-unit: setup  ## unit tests only
	$(PY) -m pytest -m unit

lint:  ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:  ## ruff format and autofix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

train: setup  ## train one model: make train MODEL=cnn|mlp
	$(PY) -m training.train --model $(MODEL)

evaluate: setup  ## evaluate committed weights on the MNIST test set: make evaluate MODEL=cnn|mlp
	$(PY) -m training.evaluate --model $(MODEL)

archives: setup  ## build model_store/*.mar from the committed weights
	$(PY) -m scripts.build_archives

eval-sets: setup  ## generate the robustness evaluation sets into artifacts/eval_sets/ (from MNIST test images)
	$(PY) -m evalsets.make $(ARGS)

bench-robustness: setup  ## accuracy per eval set and model: in-process, private TorchServe, web UI (ARGS to change)
	$(PY) -m benchmarks.robustness $(or $(ARGS),--start-torchserve --start-webui)

bench-perf: setup  ## speed benchmark, in-process vs TorchServe vs web UI (ARGS="--quick", "soak", "fuzz", "cold-start")
	$(PY) -m benchmarks.perf $(ARGS)

gpu-check: setup  ## on a GPU machine: workers on CUDA (describe + log), served accuracy, short perf run
	$(PY) -m benchmarks.gpu_check $(ARGS)

clean:  ## remove build outputs
	rm -rf model_store run artifacts .pytest_cache .ruff_cache
