# Two commands set everything up: `make repro` and `make test` create .venv from the
# hash-pinned lock file when it is missing or older than the lock, then do their job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: repro test lint format bench clean-venv

$(BIN)/dvc: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	touch $@

repro: $(BIN)/dvc
	$(BIN)/dvc repro

test: $(BIN)/dvc
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(BIN)/dvc
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/dvc
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
