"""Where each stage reads and writes, as dvc.yaml declares it: one dataclass per stage, its
defaults the pipeline's own paths, used alike by the stage's main(), the tests and the bench.
`under(folder)` is the same layout inside another folder: a test's, or the throwaway copy a
non-chief training worker writes into.
"""

import dataclasses
from pathlib import Path
from typing import Self

MODEL = Path("models/model.keras")  # written by train; read by evaluate, explain, predict
PREPARED = Path("data/prepared")


@dataclasses.dataclass(frozen=True)
class StagePaths:
    """What every stage's paths can do."""

    def under(self, folder: Path) -> Self:
        """Every path of the stage inside folder, at the same place relative to it."""
        fields = dataclasses.fields(self)
        return dataclasses.replace(self, **{f.name: folder / getattr(self, f.name) for f in fields})


@dataclasses.dataclass(frozen=True)
class DownloadPaths(StagePaths):
    raw: Path = Path("data/raw")


@dataclasses.dataclass(frozen=True)
class PreparePaths(StagePaths):
    raw: Path = Path("data/raw")
    prepared: Path = PREPARED
    report: Path = Path("reports/data.json")


@dataclasses.dataclass(frozen=True)
class TrainPaths(StagePaths):
    prepared: Path = PREPARED
    model: Path = MODEL
    logs: Path = Path("reports/train")
    summary: Path = Path("reports/train.json")
    checkpoint: Path = Path("models/checkpoint")  # git-ignored, not an output: see resume.py


@dataclasses.dataclass(frozen=True)
class EvaluatePaths(StagePaths):
    model: Path = MODEL
    test: Path = PREPARED / "test"
    metrics: Path = Path("reports/metrics.json")
    classes: Path = Path("reports/classes.csv")
    predictions: Path = Path("reports/predictions.csv")
    gallery: Path = Path("reports/errors.png")


@dataclasses.dataclass(frozen=True)
class ExplainPaths(StagePaths):
    model: Path = MODEL
    test: Path = PREPARED / "test"
    rows: Path = Path("reports/rows.csv")
    picture: Path = Path("reports/reading.png")
