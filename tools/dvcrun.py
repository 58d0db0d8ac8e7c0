"""One way for every tool to run `dvc`: this interpreter's DVC (`python -m dvc`), so that
PATH does not matter (a bare `dvc` may be another environment's, or none), and a failure
is one line."""

import subprocess
import sys
from pathlib import Path

from rowlstm.errors import UserError


def dvc(
    *args: str, quiet: bool = False, cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    """`dvc ARGS` with its output on stderr (stdout is the tools' Markdown), or none at all
    when quiet, in cwd with env (default: here, as it is); a failure is one line."""
    output = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else {}
    command = [sys.executable, "-m", "dvc", *args]
    where = {"stdout": sys.stderr, "cwd": cwd, "env": env}
    if subprocess.run(command, **(where | output)).returncode:
        seen = "" if quiet else " (its output is above)"
        raise UserError(f"dvc {' '.join(args)} failed{seen}")


def dvc_output(*args: str) -> str:
    """What `dvc ARGS` prints on stdout; a failure is one line, DVC's last."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"dvc {' '.join(args)} failed: {last}")
    return result.stdout


def dvc_markdown(*args: str) -> str:
    """A `dvc ... --md` table ("" when it has no rows)."""
    table = dvc_output(*args, "--md").strip()
    return table if len(table.splitlines()) > 2 else ""
