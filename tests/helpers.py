"""What tests share besides fixtures: synthetic MNIST written as real IDX files (so tests need
no network or shared/), the one tiny training setting, and the tiny data prepared with it.

Tests and conftest.py import from here; nothing imports from a test module or conftest.py.
No pytest here: tests/test_reproducibility.py imports this module in a plain subprocess.
"""

import ast
import base64
import contextlib
import dataclasses
import functools
import gzip
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from rowlstm.idx import UBYTE
from rowlstm.params import EvaluateParams, Params, PrepareParams, TrainParams, load_params
from rowlstm.paths import PREPARED, DownloadPaths, EvaluatePaths, PreparePaths, TrainPaths

ROOT = Path(__file__).resolve().parent.parent
# The real MNIST, where a copy is at hand; tests that need it skip with NO_REAL_MNIST.
REAL_MNIST = os.environ.get("MNIST_MIRROR") or str(ROOT.parent / "shared" / "mnist")
HAS_REAL_MNIST = "://" in REAL_MNIST or Path(REAL_MNIST).is_dir()
NO_REAL_MNIST = "no real MNIST copy: set MNIST_MIRROR or put one in ../shared/mnist"
NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# The tiny setting every test trains with, as changes to params.yaml's sections: the e2e repo
# writes them into its params.yaml; unit tests get them through tiny_params(). On the 400
# synthetic digits of write_mirror it reaches 0.9 validation accuracy in a few seconds.
TINY = {
    "prepare": {"val_size": 50},
    # No shifts: the synthetic classes are columns 2 pixels apart.
    "train": {
        "units": 24,
        "epochs": 6,
        "batch_size": 25,
        "learning_rate": 5.0e-3,
        "augment_shift": 0,
        # The default's average spans about 200 steps (1 / (1 - 0.995)); a tiny run has 84.
        "ema_momentum": 0.9,
    },
}
# A stage run as DVC runs it (`python -c STAGE_WITH_BAD_PARAMS stages.NAME`), reporting on
# stderr's last line which heavy modules it imported before it stopped.
STAGE_WITH_BAD_PARAMS = """
import runpy, sys
try:
    runpy.run_module(sys.argv[1], run_name="__main__")
finally:
    heavy = sorted({"tensorflow", "keras", "dvclive"} & set(sys.modules))
    print("heavy imports:", heavy, file=sys.stderr)
"""


@functools.cache
def tiny_params() -> Params:
    """This repo's params.yaml with TINY applied: a new key there needs no test edits."""
    params = load_params(ROOT / "params.yaml")
    sections = {
        name: dataclasses.replace(getattr(params, name), **changes)
        for name, changes in TINY.items()
    }
    return dataclasses.replace(params, **sections)


def tiny_train(**changes: object) -> TrainParams:
    """The tiny train params with these changes. Set in a test every value its assertions
    depend on: the rest follows params.yaml."""
    return dataclasses.replace(tiny_params().train, **changes)


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes for a uint8 array of 1 to 3 dimensions (rowlstm/idx.py reads them)."""
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 3:
        raise ValueError(
            f"IDX needs a 1-3 dimensional uint8 array, got {array.dtype} {array.shape}"
        )
    header = struct.pack(f">HBB{array.ndim}I", 0, UBYTE, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k lights up columns 2k+3..2k+4 (plus noise), shuffled.

    Every row (time step) carries the class, so a tiny LSTM learns it in a few epochs.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index, 4:24, 2 * label + 3 : 2 * label + 5] = 255
    return images, labels.astype(np.uint8)


def write_mirror(folder: Path, n_train: int = 400, n_test: int = 200, gz: bool = True) -> dict:
    """Write the four IDX files into folder; return their pins as rowlstm/mnist.json holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    pins = {}
    for split, count, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = synthetic_digits(count, seed)
        for name, array in zip(NAMES[split], (images, labels), strict=True):
            payload = encode_idx(array)
            pins[name] = {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(payload, mtime=0))
            else:
                (folder / name).write_bytes(payload)
    return pins


def write_pins(path: Path, pins: dict) -> None:
    path.write_text(json.dumps(pins, indent=2) + "\n")


def write_prepared(out: Path) -> Path:
    """The default mirror as the prepare stage leaves it with the tiny params:
    out/{train,val,test}/{x,y}.npy, and nothing else in out."""
    from stages.prepare import run as prepare

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths = PreparePaths(raw=folder / "raw", prepared=out, report=folder / "data.json")
        write_mirror(paths.raw, gz=False)
        prepare(tiny_params().prepare, paths)
    return out


def train_paths(root: Path, name: str) -> TrainPaths:
    """The train stage's paths with every output under root/name, reading the data in
    root/data/prepared (as write_prepared leaves it)."""
    return TrainPaths(prepared=root / PREPARED).under(root / name)


def train_into(params: TrainParams, root: Path, name: str) -> dict[str, list[float]]:
    """The train stage into train_paths(root, name); Keras' per-epoch metrics."""
    from stages.train import run

    return run(params, train_paths(root, name))


def real_mnist(root: Path) -> Path:
    """The real MNIST downloaded (from REAL_MNIST) and prepared under root, with the
    prepare params of real_mnist_model; the prepared folder."""
    from rowlstm.download_mirrors import load_pins
    from stages.download import run as download
    from stages.prepare import run as prepare

    paths = PreparePaths(raw=root / "raw").under(root)
    if not paths.prepared.exists():
        download(tiny_params().download, DownloadPaths(paths.raw), load_pins(), REAL_MNIST)
        prepare(PrepareParams(val_size=1000, train_limit=20000, seed=42), paths)
    return paths.prepared


def real_mnist_model(root: Path) -> Path:
    """A small LSTM trained on 20,000 real MNIST digits through the stages (about 20 s):
    it reads a clearly drawn digit right, as the pipeline's own model does."""
    real_mnist(root)
    params = tiny_train(units=64, epochs=5, batch_size=64, learning_rate=3.0e-3, augment_shift=1)
    train_into(params, root, "small")
    return train_paths(root, "small").model


def evaluate_into(params: EvaluateParams, model: Path, test_dir: Path, out: Path) -> dict:
    """The evaluate stage on `model` and `test_dir`, its four reports under `out`; the
    metrics."""
    from stages.evaluate import run

    return run(params, EvaluatePaths(model=model, test=test_dir).under(out))


def drawn_digit(strokes: list[list[tuple[int, int]]], side: int = 280) -> np.ndarray:
    """uint8 side x side: white pen strokes (each a polyline of (x, y) points on a 280x280
    canvas, scaled to side) on black, drawn at 4x and shrunk, so their edges are
    anti-aliased as a drawing program's are."""
    from PIL import Image, ImageDraw

    scale = 4 * side / 280
    canvas = Image.new("L", (4 * side, 4 * side))
    pen = ImageDraw.Draw(canvas)
    for stroke in strokes:
        points = [(x * scale, y * scale) for x, y in stroke]
        pen.line(points, fill=255, width=round(30 * scale), joint="curve")
    return np.asarray(canvas.resize((side, side), Image.Resampling.BOX))


# Strokes of a few digits for drawn_digit, on its 280x280 canvas.
SEVEN = [[(70, 50), (210, 50), (120, 235)]]
ONE = [[(140, 30), (140, 250)]]
FOUR = [[(170, 250), (170, 40), (60, 180), (220, 180)]]
ZERO = [[(140, 40), (200, 80), (210, 160), (170, 230), (110, 230), (70, 160), (80, 80), (140, 40)]]


PACKAGES = ("stages", "rowlstm", "tools")  # ours: the stages, their library, the tools


def imported_files(module: str, root: Path = ROOT, seen: set[str] | None = None) -> set[str]:
    """Our files that importing `module` (dotted: stages.train) runs, transitively, each
    package's __init__.py included: what a stage's code deps in dvc.yaml must be."""
    seen = set() if seen is None else seen
    package, _, name = module.partition(".")
    for path in (f"{package}/__init__.py", f"{package}/{name}.py" if name else None):
        if path and path not in seen and (root / path).exists():
            seen.add(path)
            for child in _our_imports(root / path):
                imported_files(child, root, seen)
    return seen


def _our_imports(path: Path) -> set[str]:
    """The dotted names of our modules that one file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)  # and, for `from rowlstm import model`, its submodules:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def third_party_imports(files: set[str], root: Path = ROOT) -> set[str]:
    """Top-level modules that these files of ours import, less the standard library."""
    names = set()
    for path in files:
        for node in ast.walk(ast.parse((root / path).read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(PACKAGES)


# The drawing page's server (tools/serve.py), as tests/test_serve.py and tests/test_page.py
# start it.

LSTM_SIGNALS = ["input gate", "forget gate", "output gate", "c", "h"]
BROKEN_PNG = b"\x89PNG\r\n\x1a\nnot the rest of a PNG"


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def start(model: Path, port: int = 0, where: Path = ROOT) -> subprocess.Popen:
    """`python -m tools.serve` in the folder where (its examples come from the data there)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tools.serve", "--model", str(model), "--port", str(port)],
        cwd=where,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def served(model: Path, where: Path = ROOT) -> Iterator[str]:
    """`python -m tools.serve` (as `make serve` runs it) on a free port; the URL it prints."""
    server = start(model, where=where)
    try:
        line = server.stdout.readline()
        found = re.fullmatch(r"Serving the drawing page at (http://127.0.0.1:\d+/) .*\n", line)
        assert found, line + server.stderr.read()
        yield found[1]
    finally:
        server.terminate()
        server.wait(timeout=30)


def read_json(body: object) -> bytes:
    return json.dumps(body).encode()


def image_body(image: bytes) -> bytes:
    return read_json({"image": "data:image/png;base64," + base64.b64encode(image).decode()})


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def answer_of(url: str, image: bytes, blank: list[int] | None = None) -> dict:
    """The server's 200 answer for this PNG, with these rows blanked."""
    request = {"image": base64.b64encode(image).decode()}
    status, answer = post(url + "/read", read_json(request | ({"blank": blank} if blank else {})))
    assert status == 200, answer
    return answer


def pixels_of(encoded: str, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """uint8 values sent as base64, row-major."""
    return np.frombuffer(base64.b64decode(encoded, validate=True), np.uint8).reshape(shape)
