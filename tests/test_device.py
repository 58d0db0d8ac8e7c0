"""The GPU switch: a second lock with TensorFlow's CUDA wheels, and the line that says which
device trains (no GPU here or in CI: the GPU branch of that line is not run by any test)."""

import re
import subprocess
import sys

from rowlstm import train_device
from tests.helpers import ROOT


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return dict(re.findall(r"^([a-z0-9_.-]+)==(\S+) \\$", text, flags=re.MULTILINE))


def test_the_gpu_lock_is_the_cpu_lock_plus_the_cuda_wheels() -> None:
    cpu, gpu = pins("requirements.lock"), pins("requirements-gpu.lock")
    assert {name: gpu.get(name) for name in cpu} == cpu
    added = set(gpu) - set(cpu)
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12"} <= added
    assert all(name.startswith("nvidia-") for name in added)


def test_on_this_cpu_the_line_says_cpu(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(train_device, "NVIDIA_GPUS", tmp_path / "absent")
    assert train_device.device_line() == "training on CPU: TensorFlow sees no GPU"


def test_a_gpu_tensorflow_cannot_use_is_named_with_the_switch(tmp_path, monkeypatch) -> None:
    (tmp_path / "0000:00:1e.0").mkdir()
    monkeypatch.setattr(train_device, "NVIDIA_GPUS", tmp_path)
    assert train_device.device_line().endswith("(use the GPU lock: make repro GPU=1)")


def test_make_device_prints_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.device"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("training on ") and result.stdout.count("\n") == 1
