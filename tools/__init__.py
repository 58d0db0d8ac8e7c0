"""Tools beside the pipeline: predict and the drawing page; CI's report, gate, quick run and
verify (the last two run the pipeline, as a temporary experiment or in a temporary clone,
never in the workspace); the seeds table; the figures. Run as `python -m tools.NAME` (the
Makefile's targets). No stage imports them, so their code and dependencies rerun nothing.

Importing the package first checks that this interpreter has the tools' dependencies, and
says in one line what to do when it lacks them.
"""

from rowlstm.guard import require

# Every third-party module that the tools import, with the library modules they use
# (tests/test_interpreter.py keeps this list equal to those imports).
REQUIRED = (
    "dvc",
    "keras",
    "matplotlib",  # rowlstm/results.py, for the gate's accuracy formula (type hints only)
    "numpy",
    "PIL",
    "vl_convert",
    "yaml",
)

require(REQUIRED)
