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
   workspace's data/raw, else from the public mirrors; it is checksum-verified either way.
   Before the rerun, where a default DVC remote is configured (`make remote`; CI's from a
   secret), the committed model and test split are pulled from it into a third copy and
   evaluate and explain rerun on them: in a minute instead of a training, and on any kind
   of machine, this shows that the committed metrics are the committed model's (the same
   bytes on the committed run's kind; test accuracy and errors exactly on another). A
   failure here stops before the training; a remote that cannot be reached only skips it.
   The training still follows: only a rerun shows that the model is the code's;
4. keeps the rerun's dvc.lock and reports/ in .dvc/tmp/verify (`make report
   REPRODUCED=.dvc/tmp/verify` gates them too), and asks the base's gate again, with the
   rerun: on the kind of machine that made the committed run, every output must be the
   same bytes; on another, test accuracy within report.verify_tolerance.
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from rowlstm.errors import UserError, cli
from rowlstm.machine import describe
from tools.dvcrun import dvc, dvc_captured, shown
from tools.gates import ask_base, git
from tools.remote import check_host_key, default_remote
from tools.reproduction import METRICS, machine, outputs, summary

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


EVALUATED = ("evaluate", "explain")  # the stages re-run on the pulled model
PULLED = ("models/model.keras", "data/prepared/test")


def reevaluate(copy: Path) -> list[str]:
    """Pull the committed model into copy from the default remote and rerun EVALUATED on
    it; the failures ([] also when there is no remote or it cannot be reached)."""
    if Path(".dvc/config.local").exists():  # CI's remote and key, from its secrets
        shutil.copy2(".dvc/config.local", copy / ".dvc/config.local")
    found = default_remote(copy)
    if found is None:
        print("No DVC remote: the committed model is not re-evaluated (make remote).\n")
        return []
    name, url = found
    try:
        started = time.monotonic()
        check_host_key(url)
        dvc_captured("pull", *PULLED, cwd=copy)
    except UserError as error:
        print(f"The committed model could not be pulled ({error}): not re-evaluated.\n")
        return []
    pulled = time.monotonic() - started
    committed = outputs(copy), metrics_of(copy)
    dvc("repro", "--force", "--single-item", *EVALUATED, cwd=copy)
    seconds = time.monotonic() - started - pulled
    failures, passed = reevaluated(*committed, copy)
    print(
        f"Re-evaluated the committed model, pulled from remote {name!r} ({shown(url)}) in "
        f"{pulled:.0f} s, in {seconds:.0f} s: {'; '.join(failures or passed)}.\n"
    )
    return failures


def metrics_of(folder: Path) -> dict[str, float]:
    """The test section of folder's reports/metrics.json."""
    return json.loads((folder / METRICS).read_text())["test"]


def reevaluated(
    committed: dict[str, str], metrics: dict[str, float], copy: Path
) -> tuple[list[str], list[str]]:
    """(failures, what passed) of copy's re-evaluation against the committed outputs and
    test metrics: the same bytes on the committed run's kind of machine; on another, test
    accuracy and errors exactly (the rest of the numbers may differ in their last digits)."""
    if machine(copy, "the committed run") == describe():
        ours = outputs(copy)
        return [
            f"{path}: re-evaluating the committed model gave other bytes"
            for path, digest in sorted(committed.items())
            if ours.get(path) != digest
        ], ["every output of evaluate and explain the same bytes"]
    ours, keys = metrics_of(copy), ("accuracy", "errors")
    differ = [
        f"test.{key}: re-evaluating the committed model gave {ours.get(key)}, "
        f"committed {metrics.get(key)}"
        for key in keys
        if ours.get(key) != metrics.get(key)
    ]
    return differ, [f"test accuracy {ours['accuracy']:g} and errors {ours['errors']} exactly"]


def verify(base: str) -> list[str]:
    """Rerun HEAD and print the base's gate's verdict; its failures ([] if it passed)."""
    sha = git("rev-parse", "HEAD").stdout.strip()
    with tempfile.TemporaryDirectory(prefix="verify-") as folder:
        committed = checkout(sha, Path(folder) / "committed")
        first = ask_base(base, where=committed)
        if first.failures:
            print(first.markdown + "\nThe rerun is skipped: these need no training to see.")
            return first.failures
        failures = reevaluate(checkout(sha, Path(folder) / "evaluated"))
        if failures:
            print("The rerun is skipped: the committed metrics are not the committed model's.")
            return failures
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
