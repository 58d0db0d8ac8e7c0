"""One way for every tool to run `dvc`: this interpreter's DVC (`python -m dvc`), so that
PATH does not matter (a bare `dvc` may be another environment's, or none), and a failure
is one line."""

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


def dvc_captured(*args: str, cwd: Path | None = None) -> str:
    """`dvc ARGS` in cwd, its output captured: stdout, or a UserError that is DVC's reason
    alone (the caller says what failed, tools/remote.py naming the remote)."""
    command = [sys.executable, "-m", "dvc", *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise UserError(reason(result.stderr or result.stdout))
    return result.stdout


def dvc_output(*args: str) -> str:
    """What `dvc ARGS` prints on stdout; a failure is one line: the command and DVC's reason."""
    try:
        return dvc_captured(*args)
    except UserError as error:
        raise UserError(f"dvc {' '.join(args)} failed: {error}") from None


def dvc_markdown(*args: str) -> str:
    """A `dvc ... --md` table ("" when it has no rows)."""
    table = dvc_output(*args, "--md").strip()
    return table if len(table.splitlines()) > 2 else ""


def shown(url: str) -> str:
    """url with any password in it replaced by ***: what a log or an error may print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def reason(output: str) -> str:
    """DVC's ERROR line, without its prefix and with passwords hidden; else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")] or lines[-1:] or ["no output"]
    text = errors[0].removeprefix("ERROR:").strip()
    text = re.sub(r"^(unexpected error|failed to \w+ data from the cloud) - ", "", text)
    return re.sub(r"(\w+://[^\s'\"]+)", lambda found: shown(found.group(1)), text)
