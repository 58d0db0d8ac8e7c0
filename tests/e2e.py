"""Helpers for end-to-end tests: a git+DVC copy of this repo driven by the real `dvc`."""

import contextlib
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, TINY, write_mirror, write_pins

BIN = Path(sys.executable).parent
COPIED = [
    "stages",
    "rowlstm",
    "tools",
    "dvc.yaml",
    "params.yaml",
    "Makefile",
    ".dvcignore",
    ".gitignore",
    ".gitattributes",
    ".dvc/config",
    ".dvc/plots",  # dvc.yaml's custom plot templates
]


def environment(repo: Path) -> dict[str, str]:
    """The venv first on PATH, the repo's tiny mirror, and a git identity."""
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env["MNIST_MIRROR"] = str(repo.parent / "mirror")
    env |= {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return env


def sh(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=repo, env=environment(repo), capture_output=True, text=True)
    if check and result.returncode:
        pytest.fail(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def set_params(repo: Path, changes: dict) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def ran(output: str) -> list[str]:
    """Stages `dvc repro` brought up to date: run, or restored from DVC's run-cache
    (an earlier test in the session may already have run the same stage and inputs)."""
    pattern = r"(?:Running stage|Stage) '(\w+)'(?::| is cached - skipping run)"
    return re.findall(pattern, output)


def stale(repo: Path) -> set[str]:
    """The stages `dvc status` names, asked in this process (what the command calls, without
    its 1.5 s start-up: the staleness test asks once per row of its table)."""
    from dvc.repo import Repo

    with contextlib.chdir(repo), Repo() as dvc:  # stage names are relative to the cwd
        return set(dvc.status())


def experiments(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json` as {experiment name: its data}."""
    found = {}
    for baseline in json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout):
        for group in baseline.get("experiments") or []:
            for rev in group["revs"]:
                found[rev["name"]] = rev["data"]
    return found


def make_repo(base: Path) -> Path:
    """A git+DVC copy of this repo in base/repo, reproduced once on tiny data and committed."""
    repo = base / "repo"
    repo.mkdir()
    for name in COPIED:
        source = ROOT / name
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    write_pins(repo / "rowlstm" / "mnist.json", write_mirror(base / "mirror"))
    set_params(repo, TINY)
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "copy")
    first = sh(repo, "dvc", "repro")
    assert ran(first.stdout) == ["download", "prepare", "train", "evaluate", "explain"]
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "run")
    return repo


def make(
    repo: Path, target: str, *variables: str, check: bool = True
) -> subprocess.CompletedProcess:
    """`make -s TARGET`, with this interpreter's environment standing in for .venv."""
    venv = BIN.parent
    args = ("make", "-s", "-o", f"{venv}/bin/dvc", target, f"VENV={venv}", *variables)
    return sh(repo, *args, check=check)


def clone(repo: Path, where: Path, data: bool = False) -> Path:
    """A git clone of the e2e repo in where/clone, as CI checks it out: no data, no DVC
    cache. With data, it gets a copy of the repo's DVC cache (a few MB) and checks the
    committed run out. A copy, not the cache itself: `dvc commit -f` writes DVC's run-cache,
    and a shared one would hand a test's forged results to the tests after it."""
    copy = where / "clone"
    where.mkdir(parents=True, exist_ok=True)
    sh(where, "git", "clone", "-q", str(repo), str(copy))
    (where / "mirror").symlink_to(repo.parent / "mirror")  # what environment() points at
    if data:
        shutil.copytree(repo / ".dvc" / "cache", copy / ".dvc" / "cache")
        sh(copy, "dvc", "checkout")
    return copy


def commit(repo: Path, message: str) -> None:
    sh(repo, "git", "commit", "-qam", message)


SSHD = Path("/usr/sbin/sshd")


def descendants(pid: int) -> list[int]:
    """The processes below pid, children first, read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


class SSHServer:
    """OpenSSH's own server on a loopback port, with a host key and a client key of its own,
    serving SFTP (what DVC's SSH plugin speaks) from folder/remote. HOME is folder/home while
    it runs: its .ssh holds the client key and a known_hosts that trusts the host key, as a
    teammate's would, and nothing of the real home is read or written. stop() and start()
    keep the port and the keys."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.home = folder, folder / "home"
        (self.home / ".ssh").mkdir(parents=True)
        self.key = self.home / ".ssh/id_ed25519"  # the throw-away client key: the default one
        self.root = folder / "remote"  # where the DVC remote's objects land
        self.root.mkdir()
        for key in (folder / "host_key", self.key):
            keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)]
            subprocess.run(keygen, check=True)
        shutil.copy(f"{self.key}.pub", folder / "authorized_keys")
        with socket.socket() as probe:  # a free port, kept across stop() and start()
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        host = Path(f"{folder}/host_key.pub").read_text().split()[:2]
        known = f"[127.0.0.1]:{self.port} {' '.join(host)}\n"
        (self.home / ".ssh/known_hosts").write_text(known)
        self.url = f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{self.root}"
        self.process: subprocess.Popen | None = None

    def config(self) -> Path:
        path = self.folder / "sshd_config"
        path.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.folder}/host_key\n"
            f"PidFile {self.folder}/sshd.pid\nAuthorizedKeysFile {self.folder}/authorized_keys\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"AllowUsers {getpass.getuser()}\nSubsystem sftp internal-sftp\n"
        )
        return path

    def start(self) -> None:
        """Start the server; wait (without a clock) until it says it listens."""
        command = [str(SSHD), "-D", "-e", "-f", str(self.config())]
        self.process = subprocess.Popen(
            command, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        seen = []
        for line in self.process.stderr:
            seen.append(line.strip())
            if "Server listening on 127.0.0.1" in line:
                # Its log read on, so that a full pipe never stalls the server.
                threading.Thread(target=self.process.stderr.read, daemon=True).start()
                return
        raise RuntimeError(f"sshd did not start: {' '.join(seen[-3:]) or 'no output'}")

    def stop(self) -> None:
        """Kill the server and every session it serves, at once (a crash, not a shutdown).
        Each session is a child that left the server's process group (setsid), so they are
        found as its descendants."""
        if self.process and self.process.poll() is None:
            for pid in [self.process.pid, *descendants(self.process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def add_remote(self, repo: Path) -> None:
        """This server as repo's default DVC remote, `team`, in .dvc/config.local alone."""
        sh(repo, "dvc", "remote", "add", "--local", "-f", "-d", "team", self.url)


def published(repo: Path, server: SSHServer, where: Path, push: bool = True) -> Path:
    """A clone of the e2e repo with its data, the server its remote by `make remote`,
    committed (so that clones of it know the remote), then `make push`ed unless told not."""
    work = clone(repo, where, data=True)
    added = make(work, "remote", f"URL={server.url}")
    assert f"Remote 'team' is {server.url}, the default, in .dvc/config." in added.stdout
    commit(work, "DVC remote")
    if push:
        assert make(work, "push").stdout.startswith("push: ")
    return work
