"""params.yaml as frozen dataclasses: every key required, typed, range-checked.

Stages receive these objects instead of raw dicts so that a typo, a wrong type or an
out-of-range value fails at once with one message naming the key, before any heavy
import or any output is touched. Nothing here has a default: params.yaml is the only
place configuration lives.
"""

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin
from urllib.parse import urlparse

import yaml

from rowlstm.errors import UserError, one_line

MIRROR_SCHEMES = ("http", "https", "file")
# What a list of each entry type is called in errors ("must be a non-empty list of integers").
_ENTRY_NOUNS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}
Schema = TypeVar("Schema")


def _allowed(**limits: Any) -> Any:
    """A dataclass field carrying the values it allows, checked when params.yaml is loaded.

    Limits: min/max (inclusive), above (exclusive), choices; on a tuple field they apply to
    each entry, and schemes (the URL schemes accepted) makes the field a list of URLs. Kept
    on the field, each key's type and allowed values read as one line of the schema.
    """
    return field(metadata=limits)


@dataclass(frozen=True)
class DownloadParams:
    mirrors: tuple[str, ...] = _allowed(schemes=MIRROR_SCHEMES)
    timeout: float = _allowed(above=0)


@dataclass(frozen=True)
class PrepareParams:
    val_size: int = _allowed(min=1)
    train_limit: int = _allowed(min=0)
    seed: int = _allowed(min=0)


@dataclass(frozen=True)
class TrainParams:
    cell: str = _allowed(choices=("lstm", "gru", "simple_rnn"))
    units: int = _allowed(min=1, max=4096)
    layers: int = _allowed(min=1, max=8)
    bidirectional: bool = _allowed()
    dropout: float = _allowed(min=0, max=0.9)
    optimizer: str = _allowed(choices=("adam", "adamw", "rmsprop", "sgd"))
    learning_rate: float = _allowed(above=0, max=10)
    lr_schedule: str = _allowed(choices=("constant", "cosine"))
    warmup_epochs: int = _allowed(min=0)
    clipnorm: float = _allowed(min=0)
    label_smoothing: float = _allowed(min=0, max=0.5)
    ema_momentum: float = _allowed(min=0, max=0.9999)
    augment_shift: int = _allowed(min=0, max=4)
    augment_rotate: float = _allowed(min=0, max=45)
    augment_scale: float = _allowed(min=0, max=0.5)
    batch_size: int = _allowed(min=1)
    jit_compile: bool = _allowed()
    distribution: str = _allowed(choices=("none", "mirrored", "multi_worker"))
    epochs: int = _allowed(min=1)
    patience: int = _allowed(min=1)
    seed: int = _allowed(min=0)


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = _allowed(min=1)


@dataclass(frozen=True)
class ExplainParams:
    batch_size: int = _allowed(min=1)


@dataclass(frozen=True)
class ReportParams:
    """The CI gates' thresholds (tools/gates.py, as the base revision has them), read by
    no pipeline stage."""

    max_accuracy_drop: float = _allowed(min=0, max=1)
    min_accuracy: float = _allowed(min=0, max=1)
    verify_tolerance: float = _allowed(min=0, max=1)
    quick_min_accuracy: float = _allowed(min=0, max=1)


@dataclass(frozen=True)
class Params:
    download: DownloadParams
    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams
    explain: ExplainParams
    report: ReportParams


def load_params(path: Path = Path("params.yaml")) -> Params:
    """Read and validate params.yaml; raise UserError listing every problem found."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {one_line(error)}") from None
    return validate(raw, Params, str(path))


def validate(raw: Any, schema: type[Schema], source: str) -> Schema:
    """`raw` (YAML as loaded) as an instance of the frozen dataclass `schema`.

    Every problem is collected before raising, so the user sees all of them in one line,
    "SOURCE: problem; problem", instead of fixing one per run. A field whose type the loader
    cannot check raises TypeError: that is a bug in the schema, not a user error.
    """
    problems: list[str] = []
    params = _parse_section(raw, schema, "", problems)
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems))
    return params


def _parse_section(raw: Any, section: type, prefix: str, problems: list[str]) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a mapping of keys, got {raw!r}")
        return None
    allowed_keys = {spec.name for spec in fields(section)}
    for key in sorted(set(map(str, raw)) - allowed_keys):
        close = difflib.get_close_matches(key, allowed_keys, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        allowed = ", ".join(sorted(allowed_keys))
        problems.append(f"unknown key {prefix}{key} ({hint}allowed: {allowed})")
    parsed = {}
    for spec in fields(section):
        key = prefix + spec.name
        if spec.name not in raw:
            missing = "section" if is_dataclass(spec.type) else "key"
            problems.append(f"{missing} {key} is missing")
        elif is_dataclass(spec.type):
            parsed[spec.name] = _parse_section(raw[spec.name], spec.type, key + ".", problems)
        else:
            try:
                parsed[spec.name] = _parse_value(key, raw[spec.name], spec.type, spec.metadata)
            except ValueError as error:
                problems.append(str(error))
    complete = len(parsed) == len(allowed_keys) and None not in parsed.values()
    return section(**parsed) if complete else None


def _parse_value(key: str, value: Any, annotation: Any, limits: Mapping[str, Any]) -> Any:
    """`value` checked against the field's type and limits: ValueError names key and value."""
    if get_origin(annotation) is tuple:
        return _parse_list(key, value, annotation, limits)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if annotation is str:
        return _parse_string(key, value, limits)
    if annotation in (int, float):
        return _check_range(key, value, _parse_number(key, value, annotation), limits)
    raise TypeError(
        f"{key}: params fields may be bool, int, float, str or tuple[T, ...] of "
        f"those, not {annotation!r}"
    )


def _parse_string(key: str, value: Any, limits: Mapping[str, Any]) -> str:
    if "choices" in limits:
        choices = limits["choices"]
        if value not in choices:
            raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    elif not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def _parse_number(key: str, value: Any, annotation: type) -> int | float:
    if annotation is int:
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


def _check_range(
    key: str, value: Any, number: int | float, limits: Mapping[str, Any]
) -> int | float:
    """`number` if within limits; the error quotes `value` as written in params.yaml."""
    if "min" in limits and number < limits["min"]:
        raise ValueError(f"{key} must be >= {limits['min']}, got {value!r}")
    if "max" in limits and number > limits["max"]:
        raise ValueError(f"{key} must be <= {limits['max']}, got {value!r}")
    if "above" in limits and number <= limits["above"]:
        raise ValueError(f"{key} must be > {limits['above']}, got {value!r}")
    return number


def _parse_list(
    key: str, value: Any, annotation: Any, limits: Mapping[str, Any]
) -> tuple[Any, ...]:
    """A YAML list as a tuple, so that params stay immutable and hashable; each entry is
    checked like a key of the entry type under the field's limits, and named KEY[INDEX]."""
    args = get_args(annotation)
    if len(args) != 2 or args[1] is not Ellipsis or args[0] not in _ENTRY_NOUNS:
        raise TypeError(
            f"{key}: a params list must be tuple[T, ...] with T one of bool, int, float, str, "
            f"not {annotation!r}"
        )
    entry_type = args[0]
    noun = "URLs" if "schemes" in limits else _ENTRY_NOUNS[entry_type]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{key} must be a non-empty list of {noun}, got {value!r}")
    if "schemes" in limits:
        return _parse_urls(key, value, limits["schemes"])
    return tuple(
        _parse_value(f"{key}[{index}]", entry, entry_type, limits)
        for index, entry in enumerate(value)
    )


def _parse_urls(key: str, urls: list[Any], schemes: tuple[str, ...]) -> tuple[str, ...]:
    for url in urls:
        try:
            scheme = urlparse(url).scheme if isinstance(url, str) else None
        except ValueError as error:  # e.g. "http://[x": an unclosed IPv6 host
            raise ValueError(f"{key} entry {url!r} is not a valid URL ({error})") from None
        if scheme not in schemes:
            raise ValueError(f"{key} entries must be {'/'.join(schemes)} URLs, got {url!r}")
    return tuple(urls)
