"""params.yaml as frozen dataclasses: every key required, typed, range-checked.

Stages receive these objects instead of raw dicts so that a typo, a wrong type or an
out-of-range value fails at once with one message naming the key, before any heavy
import or any output is touched. Nothing here has a default: params.yaml is the only
place configuration lives.
"""

import difflib
import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import urlparse

import yaml

from stages.errors import UserError, one_line

MIRROR_SCHEMES = ("http", "https", "file")


def _rule(**limits: Any) -> Any:
    """A dataclass field with validation limits: min/max (inclusive), above (exclusive), choices."""
    return field(metadata=limits)


@dataclass(frozen=True)
class DownloadParams:
    mirrors: tuple[str, ...] = _rule(schemes=MIRROR_SCHEMES)
    timeout: float = _rule(above=0)


@dataclass(frozen=True)
class PrepareParams:
    val_size: int = _rule(min=1)
    train_limit: int = _rule(min=0)
    seed: int = _rule(min=0)


@dataclass(frozen=True)
class TrainParams:
    cell: str = _rule(choices=("lstm", "gru", "simple_rnn"))
    units: int = _rule(min=1, max=4096)
    layers: int = _rule(min=1, max=8)
    bidirectional: bool = _rule()
    dropout: float = _rule(min=0, max=0.9)
    optimizer: str = _rule(choices=("adam", "adamw", "rmsprop", "sgd"))
    learning_rate: float = _rule(above=0, max=10)
    lr_schedule: str = _rule(choices=("constant", "cosine"))
    warmup_epochs: int = _rule(min=0)
    clipnorm: float = _rule(min=0)
    augment_shift: int = _rule(min=0, max=4)
    batch_size: int = _rule(min=1)
    jit_compile: bool = _rule()
    distribution: str = _rule(choices=("none", "mirrored", "multi_worker"))
    epochs: int = _rule(min=1)
    patience: int = _rule(min=1)
    seed: int = _rule(min=0)


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = _rule(min=1)


@dataclass(frozen=True)
class ReportParams:
    """Read by `python -m stages.report` (the CI gates), not by a pipeline stage."""

    max_accuracy_drop: float = _rule(min=0, max=1)
    quick_min_accuracy: float = _rule(min=0, max=1)


@dataclass(frozen=True)
class Params:
    download: DownloadParams
    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams
    report: ReportParams


def load_params(path: Path = Path("params.yaml")) -> Params:
    """Read and validate params.yaml; raise UserError listing every problem found."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {one_line(error)}") from None
    problems: list[str] = []
    params = _parse_section(raw, Params, "", problems)
    if problems:
        raise UserError(f"{path}: " + "; ".join(problems))
    return params


def _parse_section(raw: Any, cls: type, prefix: str, problems: list[str]) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a mapping of keys, got {raw!r}")
        return None
    known = {f.name for f in fields(cls)}
    for key in sorted(set(map(str, raw)) - known):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        problems.append(f"unknown key {prefix}{key} ({hint}allowed: {', '.join(sorted(known))})")
    values = {}
    for f in fields(cls):
        key = prefix + f.name
        if f.name not in raw:
            kind = "section" if is_dataclass(f.type) else "key"
            problems.append(f"{kind} {key} is missing")
        elif is_dataclass(f.type):
            values[f.name] = _parse_section(raw[f.name], f.type, key + ".", problems)
        else:
            try:
                values[f.name] = _parse_value(key, raw[f.name], f.type, f.metadata)
            except ValueError as error:
                problems.append(str(error))
    return cls(**values) if len(values) == len(known) and None not in values.values() else None


def _parse_value(key: str, value: Any, kind: Any, limits: Any) -> Any:
    if get_origin(kind) is tuple:
        return _parse_mirrors(key, value, limits["schemes"])
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if kind is str:
        choices = limits["choices"]
        if value not in choices:
            raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        return value
    number = _number(key, value, kind)
    if "min" in limits and number < limits["min"]:
        raise ValueError(f"{key} must be >= {limits['min']}, got {value!r}")
    if "max" in limits and number > limits["max"]:
        raise ValueError(f"{key} must be <= {limits['max']}, got {value!r}")
    if "above" in limits and number <= limits["above"]:
        raise ValueError(f"{key} must be > {limits['above']}, got {value!r}")
    return number


def _number(key: str, value: Any, kind: type) -> int | float:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return value
    if isinstance(value, str):
        # PyYAML reads YAML 1.1, where `1e-3` (no dot) is a string: accept what float() reads.
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _parse_mirrors(key: str, value: Any, schemes: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{key} must be a non-empty list of URLs, got {value!r}")
    for url in value:
        if not isinstance(url, str) or urlparse(url).scheme not in schemes:
            raise ValueError(f"{key} entries must be {'/'.join(schemes)} URLs, got {url!r}")
    return tuple(value)
