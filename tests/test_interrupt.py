"""Interruptions, end to end: a killed `dvc repro` resumes, a concurrent one is refused."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e import environment, ran, sh, stale
from tests.helpers import TINY

CHECKPOINT = Path("models/checkpoint/state.json")
RETRAIN = ("--force", "--no-run-cache", "--single-item", "train")


def start_training(repo: Path) -> subprocess.Popen:
    """The committed run's training again, as `dvc repro` runs it (forced, not restored from
    the run-cache), in its own process group; returned once 2 of its epochs are saved.
    Its model must come out with the hash dvc.lock records: that run was never stopped."""
    process = subprocess.Popen(
        ["dvc", "repro", *RETRAIN],
        cwd=repo,
        env=environment(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"training ended before the test could act:\n{process.stdout.read()}")
        try:
            if len(json.loads((repo / CHECKPOINT).read_text())["history"]) >= 2:
                return process
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("no checkpoint after 120 s")


def model_hash(repo: Path) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"].endswith(".keras"))


def test_a_killed_training_resumes_and_ends_with_the_same_model(restore) -> None:
    """SIGKILL, the harshest end: nothing can clean up. (SIGTERM ends the stage the same way,
    as no stage installs a handler for it.)"""
    repo = restore
    uninterrupted = model_hash(repo)
    process = start_training(repo)
    os.killpg(process.pid, signal.SIGKILL)  # dvc and its training, as the OOM killer would
    process.wait(timeout=60)
    assert process.returncode != 0
    assert not (repo / "models/model.keras").exists()  # never a model that looks complete
    resumed = sh(repo, "dvc", "repro", *RETRAIN)  # DVC's cache holds this run's model
    epochs = TINY["train"]["epochs"]
    assert re.search(rf"resuming after epoch [2-{epochs - 1}] of {epochs}", resumed.stdout)
    assert ran(resumed.stdout) == ["train"]
    assert not (repo / "models/checkpoint").exists()
    assert model_hash(repo) == uninterrupted
    assert stale(repo) == set()


def test_a_second_repro_is_refused_while_one_runs(restore) -> None:
    repo = restore
    first = start_training(repo)
    try:
        second = sh(repo, "dvc", "repro", check=False)
    finally:
        finished = first.wait(timeout=120)
    assert second.returncode != 0
    # DVC's lock message: the output the second run needs, and the process holding it.
    # (After a warning, where a killed run's entry was left in DVC's lock file.)
    message = second.stderr[second.stderr.index("ERROR: ") :].strip()
    assert message.startswith("ERROR: failed to reproduce")
    assert "is busy, it is being blocked by:" in message and "dvc repro" in message
    assert finished == 0, first.stdout.read()
    assert stale(repo) == set()
    status = sh(repo, "git", "status", "--porcelain", "--untracked-files=all").stdout
    assert status == ""  # the committed run again, and no stray files
