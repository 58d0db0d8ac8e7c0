"""The pipeline's five stages, one module each; dvc.yaml runs them as `python -m stages.NAME`.

What they share lives in the library, rowlstm/; the tools that read their results (predict,
the CI report, the figures) live in tools/, beside them, and no stage imports a tool.

Importing the package first checks that this interpreter has the stages' dependencies.
dvc.yaml's commands call `python`, which is whatever comes first on PATH: `.venv/bin/dvc
repro` run without the environment activated would start each stage with the system
Python and die in a ModuleNotFoundError traceback. Instead the stage stops here, before it
reads or writes anything, with one line saying what to do.
"""

from rowlstm.dependencies import require

# Every third-party module that the stages import, with the library modules they use
# (tests/test_interpreter.py keeps this list equal to those imports). Every stage depends on
# this file: a tool's new import must not land here, or every stage would rerun.
REQUIRED = (
    "dvclive",
    "keras",
    "matplotlib",
    "numpy",
    "pandas",
    "tensorflow",
    "tqdm",
    "yaml",
)

require(REQUIRED)
