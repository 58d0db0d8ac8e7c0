"""Do the committed results reproduce on this machine? Retrain HEAD from scratch and ask.

    python -m tools.verify [--base REF]        (make verify; CI runs it after make test)

`dvc status` and the lock check only say that dvc.lock matches the files; after `dvc
commit -f` it does whatever the files hold. Only a rerun tells. This:

1. checks out HEAD twice in a temporary folder (git clones that share this repository's
   objects and refs: the workspace, dvc.lock, DVC's cache and `dvc exp list` are left
   alone): one as committed, one to rerun;
2. asks the base revision's gate (tools/gates.py) about the committed copy first, which
   takes seconds: a stale dvc.lock or metrics that disagree with each other fail here,
   before any training;
3. reruns every stage in the second copy with a DVC cache of its own and no run-cache
   (`dvc repro --force --no-run-cache`): nothing is restored, neither what `dvc commit -f`
   recorded nor an earlier run. MNIST comes from $MNIST_MIRROR, else from this
   workspace's data/raw, else from the public mirrors; it is checksum-verified either way;
4. keeps the rerun's dvc.lock and reports/ in .dvc/tmp/verify (`make report
   REPRODUCED=.dvc/tmp/verify` gates them too), and asks the base's gate again, with the
   rerun: on the kind of machine that made the committed run, every output must be the
   same bytes; on another, test accuracy within report.verify_tolerance.
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from rowlstm.errors import UserError, cli
from rowlstm.machine import describe
from tools.dvcrun import dvc
from tools.gates import ask_base, git
from tools.reproduction import summary

KEPT = Path(".dvc/tmp/verify")  # the rerun's dvc.lock and reports/, and the commit it is of
RAW = Path("data/raw")


def checkout(sha: str, folder: Path) -> Path:
    """A clone of this repository at sha, in folder, with its refs (so that a base named
    `origin/main` or `HEAD~1` means what it means here) and none of its objects copied."""
    for args in (
        ("clone", "-q", "--mirror", "--shared", ".", str(folder / ".git")),
        ("-C", str(folder), "config", "core.bare", "false"),
        ("-C", str(folder), "checkout", "-q", "--detach", sha),
    ):
        result = git(*args)
        if result.returncode:
            raise UserError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return folder


def rerun(folder: Path) -> float:
    """Every stage of the checkout in folder, from scratch; the seconds it took."""
    env = dict(os.environ)
    if not env.get("MNIST_MIRROR") and RAW.is_dir() and any(RAW.iterdir()):
        env["MNIST_MIRROR"] = str(RAW.resolve())
    started = time.monotonic()
    cache = str((folder / ".dvc/cache").resolve())  # its own, whatever DVC's config says
    dvc("cache", "dir", "--local", cache, quiet=True, cwd=folder)
    dvc("repro", "--force", "--no-run-cache", cwd=folder, env=env)
    return time.monotonic() - started


def keep(folder: Path, sha: str) -> None:
    """The rerun's dvc.lock and reports/ into KEPT, with the commit they reproduce."""
    shutil.rmtree(KEPT, ignore_errors=True)
    KEPT.mkdir(parents=True)
    shutil.copy2(folder / "dvc.lock", KEPT / "dvc.lock")
    shutil.copytree(folder / "reports", KEPT / "reports")
    (KEPT / "commit").write_text(sha + "\n")


def verify(base: str) -> list[str]:
    """Rerun HEAD and print the base's gate's verdict; its failures ([] if it passed)."""
    sha = git("rev-parse", "HEAD").stdout.strip()
    with tempfile.TemporaryDirectory(prefix="verify-") as folder:
        committed = checkout(sha, Path(folder) / "committed")
        first = ask_base(base, where=committed)
        if first.failures:
            print(first.markdown + "\nThe rerun is skipped: these need no training to see.")
            return first.failures
        copy = checkout(sha, Path(folder) / "rerun")
        print(f"Rerunning {sha[:7]} from scratch on {summary(describe())}…", flush=True)
        seconds = rerun(copy)
        keep(copy, sha)
        minutes, rest = divmod(round(seconds), 60)
        print(f"Reran every stage in {minutes} min {rest} s; kept in {KEPT}.\n")
        asked = ask_base(base, "--reproduced", str(KEPT.resolve()), where=committed)
    print(asked.markdown, end="")
    return asked.failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="whose gate and thresholds (main)")
    args = parser.parse_args()
    failures = verify(args.base)
    if failures:
        raise UserError("\n".join(failures))


if __name__ == "__main__":
    cli(main)
