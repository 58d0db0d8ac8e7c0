"""The one-line stop for an interpreter that lacks the project's dependencies.

stages/ and tools/ call it when they are imported, each with its own list. Standard library
only: it must run where nothing else can be imported.
"""

import importlib.util
import sys


def require(modules: tuple[str, ...]) -> None:
    """Exit with one line on stderr when any of these top-level modules cannot be found."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"error: {sys.executable} lacks this project's dependencies (no "
            f"{', '.join(missing)}): activate its environment (`. .venv/bin/activate`) or run "
            "`make repro`",
            file=sys.stderr,
        )
        sys.exit(1)
