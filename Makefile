# `make repro` and `make test` set everything up: .venv is created from the hash-pinned
# lock file when it is missing or older than the lock, then the command runs inside it.
# GPU=1 (make repro GPU=1, ...) uses .venv-gpu from requirements-gpu.lock instead: the same
# pins plus TensorFlow's CUDA and cuDNN wheels, Linux x86_64 (docs/scaling.md#on-a-gpu).
PYTHON ?= python3
VENV := $(if $(GPU),.venv-gpu,.venv)
LOCK := $(if $(GPU),requirements-gpu.lock,requirements.lock)
BIN := $(VENV)/bin
# dvc.yaml's commands call `python`: make it the virtual environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test check lint format lock bench bench-serve report verify quick plots-diff \
	gate-tests figures plots device serve screenshot seeds remote push pull

$(BIN)/dvc: $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes --no-deps -r $(LOCK)
	touch $@

repro: $(BIN)/dvc
	dvc repro

# One line: the GPU TensorFlow trains on, or the CPU and why (the train stage prints it too).
device: $(BIN)/dvc
	@python -m tools.device

# Two pytest workers (pytest-xdist), a test module each at a time: most of the suite is
# process start-up (dvc, TensorFlow), which two cores overlap. PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= 2
test: lint
	python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# The fast loop while you edit: lint and every test not marked slow (no e2e pipeline, no
# training). `make test` runs everything, and CI runs `make test`.
check: lint
	python -m pytest -n $(PYTEST_WORKERS) --dist load -m "not slow"

# The peer script against our train stage on the real MNIST (see bench/run.py); QUICK=1 for
# a 2-epoch smoke run; SAVE=file.json keeps each epoch's seconds and test accuracy; TORCH=1
# adds the plain PyTorch script (bench/peer_torch.py), run in .venv-torch (built below).
# Uses $$MNIST_MIRROR, or ../shared/mnist where it exists.
export MNIST_MIRROR ?= $(wildcard $(abspath ../shared/mnist))
TORCH_BIN := .venv-torch/bin
bench: $(BIN)/dvc $(if $(TORCH),$(TORCH_BIN)/torchrun)
	dvc repro prepare
	python -m bench.run $(if $(QUICK),--quick) $(if $(SAVE),--save $(SAVE)) $(if $(TORCH),--torch)

# The PyTorch peer's own environment, built only for TORCH=1: requirements-torch.lock (CPU
# torch and numpy, no TensorFlow, no DVC), so that the main lock carries no PyTorch.
$(TORCH_BIN)/torchrun: requirements-torch.lock
	$(PYTHON) -m venv .venv-torch
	$(TORCH_BIN)/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes --no-deps -r requirements-torch.lock
	touch $@

# Accuracy as a distribution (tools/seeds.py): one experiment per seed through DVC's queue,
# one at a time, then each seed's test and best validation accuracy and their mean, sd,
# min and max, from `dvc exp show`. NAME names the experiments (NAME-seedS); SET="-S
# key=value ..." makes them a candidate recipe. Seed 42 of params.yaml is the committed run.
SEEDS ?= 42 1 2
NAME ?= default
seeds: $(BIN)/dvc
	@python -m tools.seeds --name $(NAME) --seeds $(SEEDS) $(SET)

# The drawing page's server with 50 requests in flight: answers/s, latency p50/p95, none
# lost or wrong (bench/serve.py; docs/predict.md has the figures).
bench-serve: $(BIN)/dvc
	dvc repro prepare
	python -m bench.serve --requests 1000 --in-flight 50

# The drawing page (tools/serve.py): draw a digit, or drop an image, and watch the trained
# model read it. Loopback only unless HOST says otherwise (HOST=0.0.0.0 for a classroom).
HOST ?= 127.0.0.1
PORT ?= 8000
serve: $(BIN)/dvc
	@python -m tools.serve --host $(HOST) --port $(PORT)

# README's picture of the drawing page, and docs/drawing.md's on a phone: its browser tests
# (tests/test_page.py) on the pipeline's model, saved with that model's hash for
# tests/test_docs.py to check.
screenshot: $(BIN)/dvc
	python -m pytest -q tests/test_page.py -k "seven_drawn or phone" \
		--drawing-model models/model.keras --screenshot docs/img/drawing-page.png

# CI's job summary and BASE's verdict; REPRODUCED=.dvc/tmp/verify judges make verify's rerun
# too. What the gates check, and why: docs/guarantees.md#the-report-its-gates-and-ci.
BASE ?= main
report: $(BIN)/dvc
	@python -m tools.report --base $(BASE) $(if $(REPRODUCED),--reproduced $(REPRODUCED))

# Do the committed results reproduce on this machine? With a DVC remote, first re-evaluates
# the committed model pulled from it; then retrains HEAD in a temporary clone, and BASE's
# judge compares (the same page of docs/guarantees.md).
verify: $(BIN)/dvc
	@python -m tools.verify --base $(BASE)

# The team's DVC remote (tools/remote.py, docs/scaling.md#a-team-remote-over-ssh): `make
# remote URL=ssh://user@host/path` makes it the default in .dvc/config (commit it); KEY=file
# names the SSH key, kept in .dvc/config.local; LOCAL=1 keeps the URL there too. `make
# push` is `dvc push --run-cache` plus the files of every run in the run-cache, which DVC
# leaves behind; `make pull` is `dvc pull --run-cache`.
remote: $(BIN)/dvc
	@python -m tools.remote add "$(URL)" $(if $(KEY),--key "$(KEY)") $(if $(LOCAL),--local)

push pull: $(BIN)/dvc
	@python -m tools.remote $@

# CI's quick run, about a minute: a temporary experiment (`dvc exp run --temp`) on 2,000
# training digits for 2 epochs, its metrics against HEAD, failing below BASE's
# report.quick_min_accuracy. It leaves the workspace and `dvc exp list` as they were; DVC's
# run-cache keeps it, so an unchanged quick run is restored rather than retrained (with
# `--pull` when a DVC remote answers: from the team's run-cache too). Its 126 steps get a
# weights' average of about 10 steps (params.yaml's spans about 200).
QUICK_RUN := -S prepare.train_limit=2000 -S train.epochs=2 -S train.batch_size=32 \
	-S train.warmup_epochs=0 -S train.ema_momentum=0.9
quick: $(BIN)/dvc
	@python -m tools.quick --base $(BASE) $(QUICK_RUN)

# CI's pictures of a change: every plot of `dvc plots diff BASE` (BASE and the workspace
# overlaid) as a PNG in dvc_plots/diff, and a Markdown list of them.
plots-diff: $(BIN)/dvc
	@python -m tools.figures --diff $(BASE) --out dvc_plots/diff

# The tests of CI's gates alone; CI also runs them on the newest DVC 3.x (allowed to fail).
gate-tests: $(BIN)/dvc
	python -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests/test_gate.py tests/test_judge.py \
		tests/test_verify.py

# The pictures in README and docs/ (docs/img/), rendered offline from dvc.yaml's plots of
# the committed run; tests/test_docs.py checks they show the run that dvc.lock records.
figures: $(BIN)/dvc
	python -m tools.figures

# `dvc plots show` into a page that works offline: Vega bundled into the page, no CDN.
OFFLINE_TEMPLATE := .dvc/tmp/offline.html
plots: $(BIN)/dvc
	python -m tools.figures --offline $(OFFLINE_TEMPLATE)
	dvc plots show --html-template $(OFFLINE_TEMPLATE)

lint: $(BIN)/dvc
	ruff check .
	ruff format --check .

format: $(BIN)/dvc
	ruff format .
	ruff check --fix .

# Re-pin the whole dependency tree after editing requirements.in (needs uv: pip install uv);
# the GPU lock keeps every pin of the CPU lock and adds the CUDA wheels; the PyTorch peer's
# lock (TORCH=1) takes numpy's pin from it, and CPU torch from PyTorch's own wheel page.
LOCK_FLAGS := --generate-hashes --python-version 3.11
lock:
	uv pip compile $(LOCK_FLAGS) requirements.in -o requirements.lock
	uv pip compile $(LOCK_FLAGS) --python-platform x86_64-unknown-linux-gnu \
		requirements-gpu.in -c requirements.lock -o requirements-gpu.lock
	uv pip compile $(LOCK_FLAGS) --python-platform x86_64-unknown-linux-gnu --emit-find-links \
		requirements-torch.in -c requirements.lock -o requirements-torch.lock
