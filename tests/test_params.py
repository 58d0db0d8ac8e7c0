import os
import re
import subprocess
import sys
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path

import pytest
import yaml

from rowlstm.errors import UserError
from rowlstm.params import Params, load_params, validate
from rowlstm.paths import (
    DownloadPaths,
    EvaluatePaths,
    ExplainPaths,
    PreparePaths,
    StagePaths,
    TrainPaths,
)
from tests.helpers import PACKAGES, ROOT, STAGE_WITH_BAD_PARAMS, imported_files


def write(tmp_path: Path, edit: dict | None = None, drop: str = "") -> Path:
    """params.yaml from the repo with dotted keys set (edit) or removed (drop)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in (edit or {}).items():
        section, key = dotted.split(".")
        raw[section][key] = value
    if drop:
        *parents, last = drop.split(".")
        target = raw
        for part in parents:
            target = target[part]
        del target[last]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def problem(tmp_path: Path, **kwargs: object) -> str:
    with pytest.raises(UserError) as caught:
        load_params(write(tmp_path, **kwargs))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_repository_params_load_as_written() -> None:
    """Whatever values they hold: an applied `dvc exp run -S train.units=256` must pass."""
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params.train.units == raw["train"]["units"] >= 1
    assert params.prepare.val_size == raw["prepare"]["val_size"]
    assert params.download.mirrors == tuple(raw["download"]["mirrors"])


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"train.units": -3}, "train.units must be >= 1, got -3"),
        ({"train.units": "many"}, "train.units must be an integer, got 'many'"),
        ({"train.units": 12.5}, "train.units must be an integer, got 12.5"),
        ({"train.epochs": True}, "train.epochs must be an integer, got True"),
        ({"train.optimizer": "adamm"}, "train.optimizer must be one of adam, adamw"),
        ({"train.cell": "lstn"}, "train.cell must be one of lstm, gru, simple_rnn, got 'lstn'"),
        (
            {"train.distribution": "horovod"},
            "train.distribution must be one of none, mirrored, multi_worker, got 'horovod'",
        ),
        ({"train.learning_rate": 0}, "train.learning_rate must be > 0, got 0"),
        ({"train.learning_rate": "fast"}, "train.learning_rate must be a number, got 'fast'"),
        ({"train.dropout": 1.5}, "train.dropout must be <= 0.9, got 1.5"),
        ({"download.mirrors": []}, "download.mirrors must be a non-empty list"),
        (
            {"download.mirrors": ["ftp://x/"]},
            "entries must be http/https/file URLs, got 'ftp://x/'",
        ),
        (
            {"download.mirrors": ["http://[x/"]},
            "download.mirrors entry 'http://[x/' is not a valid URL (Invalid IPv6 URL)",
        ),
        ({"download.timeout": -1}, "download.timeout must be > 0"),
        ({"prepare.train_limit": -1}, "prepare.train_limit must be >= 0"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(
    tmp_path: Path, edit: dict, expected: str
) -> None:
    assert expected in problem(tmp_path, edit=edit)


@dataclass(frozen=True)
class Demo:
    """A section of each kind that params.yaml has no example of yet."""

    name: str
    sizes: tuple[int, ...] = field(metadata={"min": 1})
    rates: tuple[float, ...]
    tags: tuple[str, ...] = field(metadata={"choices": ("a", "b")})


@dataclass(frozen=True)
class DemoParams:
    demo: Demo


GOOD_DEMO = {"name": "x", "sizes": [1, 2], "rates": ["1e-3", 2], "tags": ["b"]}


def test_strings_without_choices_and_lists_of_any_type_load() -> None:
    params = validate({"demo": GOOD_DEMO}, DemoParams, "demo.yaml")
    assert params == DemoParams(Demo("x", (1, 2), (0.001, 2.0), ("b",)))
    assert type(params.demo.rates[1]) is float


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"name": 5}, "demo.name must be a string, got 5"),
        ({"name": None}, "demo.name must be a string, got None"),
        ({"sizes": 3}, "demo.sizes must be a non-empty list of integers, got 3"),
        ({"sizes": []}, "demo.sizes must be a non-empty list of integers, got []"),
        ({"sizes": [1, "x"]}, "demo.sizes[1] must be an integer, got 'x'"),
        ({"sizes": [2, True]}, "demo.sizes[1] must be an integer, got True"),
        ({"sizes": [0]}, "demo.sizes[0] must be >= 1, got 0"),
        ({"rates": "fast"}, "demo.rates must be a non-empty list of numbers, got 'fast'"),
        ({"rates": [1, "fast"]}, "demo.rates[1] must be a number, got 'fast'"),
        ({"tags": ["a", "c"]}, "demo.tags[1] must be one of a, b, got 'c'"),
        (
            {"name": 1, "tags": "a"},
            "demo.name must be a string, got 1; demo.tags must be a non-empty list of strings, "
            "got 'a'",
        ),
    ],
)
def test_any_string_or_list_field_gets_a_one_line_error(edit: dict, expected: str) -> None:
    with pytest.raises(UserError) as caught:
        validate({"demo": GOOD_DEMO | edit}, DemoParams, "demo.yaml")
    assert str(caught.value) == f"demo.yaml: {expected}"


@pytest.mark.parametrize("annotation", [Path, list[int], tuple[int, int], tuple[Path, ...]])
def test_a_field_type_the_loader_cannot_check_is_a_schema_bug(annotation: object) -> None:
    """A TypeError (a traceback for the developer), never a user error blaming params.yaml."""
    section = make_dataclass("Odd", [("odd", annotation)], frozen=True)
    with pytest.raises(TypeError, match=r"^odd: .*params.* not "):
        validate({"odd": [1, 2]}, section, "odd.yaml")


def test_unknown_key_is_rejected_with_the_allowed_keys(tmp_path: Path) -> None:
    message = problem(tmp_path, edit={"train.unitz": 64})
    assert (
        "unknown key train.unitz (did you mean units? allowed: augment_rotate, augment_scale,"
        in message
    )


def test_missing_key_and_missing_section(tmp_path: Path) -> None:
    assert "key train.seed is missing" in problem(tmp_path, drop="train.seed")
    assert "section evaluate is missing" in problem(tmp_path, drop="evaluate")


def test_every_problem_is_reported_on_one_line(tmp_path: Path) -> None:
    message = problem(tmp_path, edit={"train.units": 0, "prepare.seed": "x"})
    assert "prepare.seed must be an integer" in message
    assert "train.units must be >= 1" in message


def test_yaml_11_exponent_strings_are_read_as_numbers(tmp_path: Path) -> None:
    path = write(tmp_path)
    text = re.sub(r"learning_rate: \S+", "learning_rate: 2e-3", path.read_text())
    path.write_text(text)
    assert yaml.safe_load(path.read_text())["train"]["learning_rate"] == "2e-3"
    assert load_params(path).train.learning_rate == pytest.approx(0.002)


def test_broken_yaml_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(path)
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "absent.yaml")


def test_dvc_yaml_tracks_exactly_the_section_each_stage_reads() -> None:
    """Each stage reads its own section (stage name == section name), all of it (the schema
    requires every key) and only it, so dvc.yaml tracks that whole section.

    `report` is the one section no stage reads: the CI gate (tools/report.py) reads it.
    """
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    sections = {f.name for f in fields(Params) if f.name != "report"}
    assert set(stages) == sections
    for name, stage in stages.items():
        assert stage["params"] == [name], name
        assert stage["cmd"] == f"python -m stages.{name}"


def test_dvc_yaml_code_deps_are_exactly_the_modules_each_stage_imports() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        code = {dep for dep in stage["deps"] if dep.split("/")[0] in PACKAGES}
        data_files = {dep for dep in code if not dep.endswith(".py")}
        assert code - data_files == imported_files(f"stages.{name}"), name
        assert not [dep for dep in code if dep.startswith("tools/")], name
    assert {d for d in stages["download"]["deps"] if d.endswith(".json")} == {"rowlstm/mnist.json"}


@pytest.mark.parametrize("stage", ["download", "prepare", "train", "evaluate", "explain"])
def test_bad_params_stop_a_stage_before_heavy_imports_and_outputs(
    tmp_path: Path, stage: str
) -> None:
    """Run as DVC runs it, in a folder with earlier outputs: one line, nothing touched."""
    params = write(tmp_path, edit={"train.cell": "lstn", "download.timeout": "soon"})
    before = {}
    for output in ("data/raw/x", "data/prepared/train/x.npy", "models/model.keras"):
        (tmp_path / output).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / output).write_text("earlier output")
        before[output] = "earlier output"
    result = subprocess.run(
        [sys.executable, "-c", STAGE_WITH_BAD_PARAMS, f"stages.{stage}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    error, heavy = result.stderr.strip().splitlines()
    assert result.returncode == 1
    assert error == (
        f"error: {params.name}: download.timeout must be a number, got 'soon'; "
        "train.cell must be one of lstm, gru, simple_rnn, got 'lstn'"
    )
    assert heavy == "heavy imports: []"
    assert {path: (tmp_path / path).read_text() for path in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "models", "params.yaml"]


def declared_files(stage: dict) -> tuple[set[Path], set[Path]]:
    """A dvc.yaml stage's data inputs (not its code), and its outputs, metrics and plots."""
    inputs = {Path(dep) for dep in stage["deps"] if dep.split("/")[0] not in PACKAGES}
    outputs = {
        Path(next(iter(entry)) if isinstance(entry, dict) else entry)
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get(kind, [])
    }
    return inputs, outputs


def covers(ours: set[Path], declared: set[Path]) -> bool:
    """Every declared file is one of ours or inside one, and each of ours holds one."""
    return all(any(path.is_relative_to(mine) for mine in ours) for path in declared) and all(
        any(path.is_relative_to(mine) for path in declared) for mine in ours
    )


@pytest.mark.parametrize(
    ("stage", "paths"),
    [
        ("download", DownloadPaths()),
        ("prepare", PreparePaths()),
        ("train", TrainPaths()),
        ("evaluate", EvaluatePaths()),
        ("explain", ExplainPaths()),
    ],
)
def test_each_stage_s_paths_are_the_ones_dvc_yaml_declares(stage: str, paths: StagePaths) -> None:
    """Its INPUTS are the data dvc.yaml says it depends on, and its other paths the outputs
    dvc.yaml declares (the checkpoint, written but never an output, aside): `under(folder)`
    moves exactly what the stage writes."""
    inputs, outputs = declared_files(
        yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    )
    mine = {f.name: getattr(paths, f.name) for f in fields(paths)}
    read = {path for name, path in mine.items() if name in paths.INPUTS}
    written = {path for name, path in mine.items() if name not in paths.INPUTS}
    assert covers(read, inputs), (read, inputs)
    assert covers(written - {TrainPaths().checkpoint}, outputs), (written, outputs)
