"""The one exception type a user can act on, and the entry point that reports it."""

import os
import sys
from collections.abc import Callable


class UserError(Exception):
    """A mistake or fault the user can fix: reported as one line, never a traceback."""


def one_line(error: BaseException) -> str:
    """An exception's message on one line: YAML, numpy and Keras spread theirs over several."""
    return " ".join(str(error).split())


def cli(main: Callable[[], None]) -> None:
    """Run a stage's or a tool's main(); a UserError becomes one line on stderr (a line per
    problem when it lists several) and exit status 1. TensorFlow's C++ logging, which is not
    an error and would bury the one line, is turned off before main() can import it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        main()
    except UserError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
