"""A full disk, for real: each writing stage and tool on a small tmpfs that fills up.

Whatever fails to write (numpy, h5py through Keras, matplotlib, a plain file), the user
gets one line naming the output and the reason, and the small disk keeps nothing half
written. Mounting needs root (CI and our machines have it); elsewhere these tests skip
with the reason.
"""

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rowlstm.errors import UserError
from rowlstm.paths import PREPARED, DownloadPaths, ExplainPaths, TrainPaths
from tests.e2e import set_params
from tests.helpers import (
    ROOT,
    TINY,
    evaluate_into,
    tiny_params,
    tiny_train,
    write_mirror,
    write_pins,
)

# The system's words, or numpy's and the free space left.
FULL = r"cannot write \((?:No space left on device|.*; [\d,]+ bytes free there)\)"
# A disk with room for the tiny raw MNIST files (471 KB), not for their prepared splits.
KIB = 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[Path, int], Path]]:
    """small_disk(folder, kib) mounts a tmpfs of that size at folder, unmounted afterwards."""
    mounted: list[Path] = []

    def mount(folder: Path, kib: int) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        command = ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip() or 'not root'}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def left_on(disk: Path) -> list[str]:
    """Every file on the disk, hidden staging files included."""
    return sorted(str(path.relative_to(disk)) for path in disk.rglob("*") if path.is_file())


def test_download_onto_a_full_disk_blames_the_disk_not_the_mirrors(
    tmp_path: Path, small_disk
) -> None:
    from rowlstm.download_mirrors import load_pins
    from stages.download import run

    mirror = tmp_path / "mirror"
    write_pins(tmp_path / "mnist.json", write_mirror(mirror))
    disk = small_disk(tmp_path / "disk", 128)
    pins = load_pins(tmp_path / "mnist.json")
    with pytest.raises(UserError, match=rf"^{disk}/data/raw: {FULL}$"):
        run(tiny_params().download, DownloadPaths().under(disk), pins, str(mirror))
    assert left_on(disk) == []


@pytest.mark.parametrize("readonly", [False, True], ids=["full", "read-only"])
def test_prepare_on_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, small_disk, readonly: bool
) -> None:
    """As DVC runs the stage, `python -m stages.prepare`: its stderr and exit status, and
    data/raw as it was."""
    data = small_disk(tmp_path / "data", KIB)
    write_mirror(data / "raw", gz=False)
    raw = left_on(data)
    if readonly:
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
    (tmp_path / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    set_params(tmp_path, TINY)
    result = subprocess.run(
        [sys.executable, "-m", "stages.prepare"],
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    reason = r"cannot write \(Read-only file system\)" if readonly else FULL
    assert re.fullmatch(rf"error: data/prepared: {reason}\n", result.stderr), result.stderr
    assert result.returncode == 1
    assert left_on(data) == raw
    assert not (tmp_path / "reports").exists()


def train_onto(prepared: Path, outputs: Path, checkpoint: Path) -> None:
    """The tiny training, its outputs under `outputs`, its checkpoint in `checkpoint`."""
    from stages.train import run

    paths = TrainPaths(prepared=prepared / PREPARED).under(outputs)
    run(tiny_train(epochs=2), dataclasses.replace(paths, checkpoint=checkpoint))


def test_train_whose_checkpoint_fills_the_disk_names_it(
    prepared: Path, tmp_path: Path, small_disk
) -> None:
    disk = small_disk(tmp_path / "disk", 16)
    with pytest.raises(UserError, match=rf"^{disk}/checkpoint\S*: {FULL}$"):
        train_onto(prepared, tmp_path / "out", disk / "checkpoint")
    assert left_on(disk) == []
    # Only DVCLive's live logs, of the epochs before: DVC commits no output of a failed stage.
    logs = TrainPaths().under(tmp_path / "out").logs
    assert sorted((tmp_path / "out").rglob("*")) == sorted([logs.parent, *logs.rglob("*"), logs])


def test_train_whose_model_fills_the_disk_writes_no_output(
    prepared: Path, tmp_path: Path, small_disk
) -> None:
    disk = small_disk(tmp_path / "disk", 16)
    with pytest.raises(UserError, match=rf"^{disk}/\S+: {FULL}$"):
        train_onto(prepared, disk, tmp_path / "checkpoint")
    logs = TrainPaths().logs.as_posix()  # DVCLive's, written as it trained
    assert left_on(disk) and all(name.startswith(f"{logs}/") for name in left_on(disk))


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    """A saved model with its initial weights: what evaluate and explain read."""
    from rowlstm.model import build_model, save_model

    path = tmp_path_factory.mktemp("model") / "model.keras"
    save_model(build_model(tiny_train(), steps_per_epoch=1), path)
    return path


def test_evaluate_on_a_full_disk_names_the_report(
    prepared: Path, untrained: Path, tmp_path: Path, small_disk
) -> None:
    disk = small_disk(tmp_path / "disk", 16)
    test_split = prepared / "data/prepared/test"
    with pytest.raises(UserError, match=rf"^{disk}/\S+: {FULL}$"):
        evaluate_into(tiny_params().evaluate, untrained, test_split, disk)
    assert not [name for name in left_on(disk) if name.startswith(".")]


def test_explain_on_a_full_disk_names_the_picture(
    prepared: Path, untrained: Path, tmp_path: Path, small_disk
) -> None:
    from stages.explain import run

    disk = small_disk(tmp_path / "disk", 16)
    paths = ExplainPaths(
        model=untrained,
        test=prepared / PREPARED / "test",
        rows=disk / "rows.csv",
        picture=disk / "reading.png",
    )
    with pytest.raises(UserError, match=rf"^{disk}/reading.png: {FULL}$"):
        run(tiny_params().explain, paths)
    assert left_on(disk) == ["rows.csv"]


def test_figures_on_a_full_disk_names_the_picture(
    tmp_path: Path, small_disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tools.figures import FIGURES, render

    values = [{"x": x, "y": x * x} for x in range(50)]
    spec = {
        "data": {"values": values},
        "mark": "line",
        "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y"}},
    }
    disk = small_disk(tmp_path / "disk", 8)
    monkeypatch.chdir(ROOT)  # render records the hashes of this repository's dvc.lock
    with pytest.raises(UserError, match=rf"^{disk}/\S+\.png: {FULL}$"):
        render(dict.fromkeys(FIGURES, spec), disk)
    assert not [name for name in left_on(disk) if name.startswith(".")]


def test_predict_show_on_a_full_disk_names_the_picture(tmp_path: Path, small_disk) -> None:
    from tools.predict import write_shown

    digits = np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    disk = small_disk(tmp_path / "disk", 8)
    with pytest.raises(UserError, match=rf"^{disk}/seen/\S+\.png: {FULL}$"):
        write_shown(disk / "seen", [(tmp_path / "noise.npy", digits)])
    assert not [name for name in left_on(disk) if "/." in f"/{name}"]
