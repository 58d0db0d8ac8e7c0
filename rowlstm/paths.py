"""Where each stage reads and writes, as dvc.yaml declares it: one dataclass per stage, its
defaults the pipeline's own paths, used alike by the stage's main(), the tests and the bench.
`under(folder)` writes the same outputs inside another folder and reads the same inputs: a
test's folder, or the throwaway copy a non-chief training worker writes into.
"""

import dataclasses
from pathlib import Path
from typing import ClassVar, Self

MODEL = Path("models/model.keras")  # written by train; read by evaluate, explain, predict
PREPARED = Path("data/prepared")


@dataclasses.dataclass(frozen=True)
class StagePaths:
    """What every stage's paths can do."""

    INPUTS: ClassVar[tuple[str, ...]] = ()  # the fields it reads; it writes the others

    def under(self, folder: Path) -> Self:
        """The stage's outputs inside folder, at the same place relative to it; its inputs
        where they are."""
        outputs = [f.name for f in dataclasses.fields(self) if f.name not in self.INPUTS]
        return dataclasses.replace(self, **{name: folder / getattr(self, name) for name in outputs})


@dataclasses.dataclass(frozen=True)
class DownloadPaths(StagePaths):
    raw: Path = Path("data/raw")


@dataclasses.dataclass(frozen=True)
class PreparePaths(StagePaths):
    INPUTS = ("raw",)
    raw: Path = Path("data/raw")
    prepared: Path = PREPARED
    report: Path = Path("reports/data.json")


@dataclasses.dataclass(frozen=True)
class TrainPaths(StagePaths):
    INPUTS = ("prepared",)
    prepared: Path = PREPARED
    model: Path = MODEL
    logs: Path = Path("reports/train")
    summary: Path = Path("reports/train.json")
    machine: Path = Path("reports/machine.json")  # which kind of machine made the run
    checkpoint: Path = Path("models/checkpoint")  # git-ignored, not an output: see resume.py


@dataclasses.dataclass(frozen=True)
class TestingPaths(StagePaths):
    """What evaluate and explain both read: the trained model and the test split."""

    INPUTS = ("model", "test")
    model: Path = MODEL
    test: Path = PREPARED / "test"


@dataclasses.dataclass(frozen=True)
class EvaluatePaths(TestingPaths):
    metrics: Path = Path("reports/metrics.json")
    classes: Path = Path("reports/classes.csv")
    predictions: Path = Path("reports/predictions.csv")
    gallery: Path = Path("reports/errors.png")


@dataclasses.dataclass(frozen=True)
class ExplainPaths(TestingPaths):
    rows: Path = Path("reports/rows.csv")
    picture: Path = Path("reports/reading.png")
