"""Tools that read the pipeline's results and never produce them: predict, the CI report and
quick run, the dvc.lock check, the figures. Run as `python -m tools.NAME` (the Makefile's
targets). No stage imports them, so their code and their dependencies rerun nothing.

Importing the package first checks that this interpreter has the tools' dependencies, and
says in one line what to do when it lacks them.
"""

from rowlstm.guard import require

# Every third-party module that the tools import, with the library modules they use
# (tests/test_interpreter.py keeps this list equal to those imports).
REQUIRED = (
    "dvc",
    "keras",
    "numpy",
    "PIL",
    "vl_convert",
    "yaml",
)

require(REQUIRED)
