"""Tools beside the pipeline, run as `python -m tools.NAME` (the Makefile's targets): predict
and the drawing page; CI's report, its judge, the quick run and verify; the seeds table;
the figures; which device trains. No stage imports them, so editing a tool, or what only a
tool imports, reruns no stage. Some run the pipeline (quick and seeds as DVC experiments,
verify in a temporary clone), never in the workspace.

Importing the package first checks that this interpreter has the tools' dependencies, and
says in one line what to do when it lacks them.
"""

from rowlstm.dependencies import require

# Every third-party module that the tools import, with the library modules they use
# (tests/test_interpreter.py keeps this list equal to those imports).
REQUIRED = (
    "asyncssh",  # tools/remote.py's host key check (dvc-ssh brings it)
    "dvc",
    "keras",
    "matplotlib",  # rowlstm/byte_stable.py, for the gate's accuracy formula (type hints only)
    "numpy",
    "PIL",
    "tensorflow",  # rowlstm/train_device.py, for make device
    "vl_convert",
    "yaml",
)

require(REQUIRED)
