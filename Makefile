# genreid: two commands on a fresh machine, `make quickstart` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv quickstart test test-all wheel-check lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

quickstart: venv
	$(BIN)/genreid quickstart --out runs/quickstart

test: venv
	$(BIN)/python -m pytest -q -n 2 tests

test-all: venv
	$(BIN)/python -m pytest -q -n 2 -m "" tests

wheel-check: venv
	bash .ci/wheel_check.sh

lint: venv
	$(BIN)/ruff check genreid tests benchmarks
	$(BIN)/ruff format --check genreid tests benchmarks

bench: venv
	$(BIN)/python benchmarks/synth_speed.py
	$(BIN)/python benchmarks/eval_speed.py
	$(BIN)/python benchmarks/rerank_speed.py
	$(BIN)/python benchmarks/train_speed.py --device cpu
	$(BIN)/python benchmarks/train_speed.py --device cpu --end-to-end
	$(BIN)/python benchmarks/shared_cores.py
	$(BIN)/python benchmarks/gan_speed.py --threads 2
	$(BIN)/python benchmarks/resume_faults.py

clean:
	rm -rf runs .pytest_cache
