"""The pipeline's stages and the modules they share.

Importing the package first checks that this interpreter has the project's dependencies.
dvc.yaml's commands call `python`, which is whatever comes first on PATH: `.venv/bin/dvc
repro` run without the environment activated would start each stage with the system
Python and die in a ModuleNotFoundError traceback. Instead the stage stops here, before it
reads or writes anything, with one line saying what to do.
"""

import importlib.util
import sys

# Every third-party module that code under stages/ imports (tests/test_interpreter.py keeps
# this list equal to the imports).
REQUIRED = (
    "dvc",
    "dvclive",
    "keras",
    "matplotlib",
    "numpy",
    "pandas",
    "PIL",
    "tensorflow",
    "tqdm",
    "vl_convert",
    "yaml",
)

_missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
if _missing:
    print(
        f"error: {sys.executable} lacks this project's dependencies (no {', '.join(_missing)}): "
        "activate its environment (`. .venv/bin/activate`) or run `make repro`",
        file=sys.stderr,
    )
    sys.exit(1)
