"""train.distribution: the same train stage on two replicas in one process (mirrored) and
on two worker processes that talk over 127.0.0.1 (multi_worker), on tiny data.

Both run in subprocesses: TensorFlow's devices and cluster are fixed once per process.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import keras
import pytest
import yaml

from rowlstm.errors import UserError
from rowlstm.split_files import load_split
from rowlstm.train_distribution import Task, task
from tests.helpers import ROOT, STAGE_WITH_BAD_PARAMS, TINY

pytestmark = pytest.mark.slow  # trainings in two-worker subprocesses

LIMIT = 240  # seconds a distributed test may take before its processes are killed


def cluster(
    kind: str,
    index: int,
    workers: tuple[str, ...] = ("127.0.0.1:2222", "127.0.0.1:2223"),
    chief: bool = False,
) -> dict[str, str]:
    """The TF_CONFIG environment of one task in a cluster of these workers (and a chief)."""
    spec = {"worker": list(workers)}
    if chief:
        spec["chief"] = ["127.0.0.1:2221"]
    return {"TF_CONFIG": json.dumps({"cluster": spec, "task": {"type": kind, "index": index}})}


def test_the_chief_is_the_chief_task_or_worker_0_without_one() -> None:
    assert task("none", {}) == Task()
    assert task("mirrored", cluster("worker", 1)) == Task()
    assert task("multi_worker", cluster("worker", 0)) == Task("worker", 0, 2, chief=True)
    assert task("multi_worker", cluster("worker", 1)) == Task("worker", 1, 2, chief=False)
    assert task("multi_worker", cluster("worker", 0, chief=True)).chief is False
    assert task("multi_worker", cluster("chief", 0, chief=True)) == Task("chief", 0, 3, True)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "train.distribution is multi_worker but TF_CONFIG is not set"),
        ({"TF_CONFIG": "{not json"}, "TF_CONFIG is not a valid cluster description"),
        ({"TF_CONFIG": '{"task": {"type": "worker", "index": 0}}'}, "KeyError: 'cluster'"),
        (cluster("ps", 0), "TF_CONFIG is not a valid cluster description (KeyError: 'ps')"),
        (cluster("worker", 2), "TF_CONFIG task.index 2 is out of range: cluster.worker has 2"),
    ],
)
def test_a_bad_cluster_description_is_one_line(environ: dict, message: str) -> None:
    with pytest.raises(UserError) as error:
        task("multi_worker", environ)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def stage_dir(prepared: Path) -> Path:
    """A folder the train stage can run in: params.yaml (tiny) and data/prepared."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, changes in TINY.items():
        params[section].update(changes)
    # Two replicas each take half of every batch: an even batch splits into equal halves.
    params["train"]["batch_size"] = 24
    (prepared / "params.yaml").write_text(yaml.safe_dump(params))
    return prepared


def test_multi_worker_without_tf_config_stops_before_tensorflow(
    stage_dir: Path, tmp_path: Path
) -> None:
    where = worker_copy(stage_dir, tmp_path / "alone", "multi_worker")
    before = files(where)
    environ = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-c", STAGE_WITH_BAD_PARAMS, "stages.train"],
        cwd=where,
        capture_output=True,
        text=True,
        env=environ | {"PYTHONPATH": str(ROOT)},
    )
    error, heavy = result.stderr.strip().splitlines()
    assert result.returncode == 1
    assert error.startswith("error: train.distribution is multi_worker but TF_CONFIG is not set")
    assert heavy == "heavy imports: []"
    assert files(where) == before


def worker_copy(stage_dir: Path, where: Path, distribution: str) -> Path:
    shutil.copytree(stage_dir, where)
    params = yaml.safe_load((where / "params.yaml").read_text())
    params["train"]["distribution"] = distribution
    (where / "params.yaml").write_text(yaml.safe_dump(params))
    (where / "tmp").mkdir()
    return where


def start(where: Path, environ: dict[str, str], *args: str) -> subprocess.Popen:
    """The train stage (or `args`) in `where`, with its own TMPDIR under `where`/tmp."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "TMPDIR": str(where / "tmp")} | environ
    command = args or ("-m", "stages.train")
    return subprocess.Popen(
        [sys.executable, *command], cwd=where, env=env, stdout=subprocess.PIPE, text=True
    )


def finish(processes: list[subprocess.Popen]) -> list[str]:
    """Each process's stdout once all exited 0 within LIMIT seconds; kill them all otherwise."""
    try:
        outputs = [process.communicate(timeout=LIMIT)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [0] * len(processes), outputs
    return outputs


def files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def val_accuracy(where: Path) -> float:
    model = keras.saving.load_model(where / "models/model.keras", safe_mode=True)
    x, y = load_split(where / "data/prepared/val")
    return float((model.predict(x, verbose=0).argmax(1) == y).mean())


TWO_CPUS = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from rowlstm.errors import cli
from stages.train import main
cli(main)
"""


@pytest.fixture(scope="module")
def mirrored(stage_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    """The train stage under `mirrored` on two logical CPU devices: its folder and stdout."""
    where = worker_copy(stage_dir, tmp_path_factory.mktemp("mirrored") / "run", "mirrored")
    (output,) = finish([start(where, {}, "-c", TWO_CPUS)])
    return where, output


def test_mirrored_trains_on_two_cpu_replicas(mirrored: tuple[Path, str]) -> None:
    where, output = mirrored
    assert "mirrored: 2 replica(s)" in output
    accuracy = val_accuracy(where)
    assert accuracy >= 0.9
    summary = json.loads((where / "reports/train.json").read_text())["training"]
    assert summary["best_val_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_multi_worker_trains_on_two_processes_and_only_the_chief_writes(
    stage_dir: Path, tmp_path: Path, mirrored: tuple[Path, str]
) -> None:
    folders = [worker_copy(stage_dir, tmp_path / f"w{i}", "multi_worker") for i in range(2)]
    before = files(folders[1])
    workers = tuple(f"127.0.0.1:{port}" for port in free_ports(2))
    processes = [start(where, cluster("worker", i, workers)) for i, where in enumerate(folders)]
    outputs = finish(processes)
    assert "multi_worker: 2 replica(s); this is worker 0 of 2 (chief)" in outputs[0]
    assert "multi_worker: 2 replica(s); this is worker 1 of 2\n" in outputs[1]
    written = files(folders[0])
    assert {"models/model.keras", "reports/train.json", "reports/train/metrics.json"} <= written
    assert "models/checkpoint" not in written
    assert files(folders[1]) == before  # nothing written, and its temporary folder removed
    # Synchronous data parallelism: two workers of one replica each compute what two
    # replicas in one process compute, to the byte.
    model = "models/model.keras"
    assert (folders[0] / model).read_bytes() == (mirrored[0] / model).read_bytes()
    assert val_accuracy(folders[0]) >= 0.9
