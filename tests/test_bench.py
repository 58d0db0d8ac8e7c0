"""make bench's machinery: workers take turns, and the quick bench prints its table."""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import TURNS, interleaved, pass_turn, take_turn
from stages.params import PrepareParams
from stages.prepare import run as prepare
from tests.conftest import write_mirror

ROOT = Path(__file__).resolve().parent.parent
FAKE = """
import json, sys, time
from bench.run import pass_turn, take_turn
name, epochs, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
take_turn()
for epoch in range(epochs):
    with open(log, "a") as out:
        out.write(f"{name}{epoch} ")
    time.sleep(0.05)
    with open(log, "a") as out:
        out.write(f"{name}{epoch}. ")
    pass_turn()
if name == "bad":
    sys.exit("it broke")
print("a last line that is not the result")
print(json.dumps({"name": name, "epochs": epochs}))
"""


def fake(name: str, epochs: int, log: Path) -> list[str]:
    return [sys.executable, "-c", FAKE, name, str(epochs), str(log)]


def test_workers_take_turns_one_epoch_each_and_never_overlap(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    log = tmp_path / "log"
    results = interleaved({"a": fake("a", 2, log), "b": fake("b", 3, log), "c": fake("c", 1, log)})
    assert results == {
        "a": {"name": "a", "epochs": 2},
        "b": {"name": "b", "epochs": 3},
        "c": {"name": "c", "epochs": 1},
    }
    # Each epoch ends before the next one starts, in round-robin order.
    assert log.read_text().split() == [
        "a0",
        "a0.",
        "b0",
        "b0.",
        "c0",
        "c0.",
        "a1",
        "a1.",
        "b1",
        "b1.",
        "b2",
        "b2.",
    ]


def test_a_failing_worker_stops_the_bench_with_its_error(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    log = tmp_path / "log"
    with pytest.raises(SystemExit, match=r"(?s)bench task bad failed:.*it broke"):
        interleaved({"good": fake("good", 5, log), "bad": fake("bad", 1, log)})
    assert log.read_text().split() == ["good0", "good0.", "bad0", "bad0.", "good1", "good1."]


def test_outside_the_bench_a_worker_waits_for_no_one(monkeypatch) -> None:
    monkeypatch.delenv(TURNS, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # would end a waiting worker
    take_turn()
    pass_turn()


@pytest.mark.slow  # three trainings and a matmul peak, each in its own process
def test_quick_bench_prints_the_table_for_all_three_runs(tmp_path) -> None:
    write_mirror(tmp_path / "raw", gz=False)
    prepare(
        PrepareParams(50, 0, 3), tmp_path / "raw", tmp_path / "data/prepared", tmp_path / "d.json"
    )
    shutil.copy(ROOT / "params.yaml", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--save", "raw.json"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("machine: ") and "quick mode" in lines[0]
    rows = [line for line in lines if line.startswith("| ") and "epochs" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| peer: plain Keras script",
        "| ours at the peer's settings",
        "| ours, params.yaml",
    ]
    assert all(row.split(" | ")[1] == "2" for row in rows)
    assert any(line.startswith("ours at the peer's settings, speed") for line in lines)
    raw = json.loads((tmp_path / "raw.json").read_text())
    assert sorted(raw["runs"]) == ["ours", "ours-peer", "peer"]
    assert all(len(run["seconds"]) == len(run["accuracy"]) == 2 for run in raw["runs"].values())
