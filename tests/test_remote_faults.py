"""The team's SSH remote when things go wrong (a real OpenSSH server, tests/e2e.py's
SSHServer): the server dies in the middle of a push, is down during a pull, serves two
clones pushing at once, and refuses a wrong key or host. Each failure is one line that
names the remote, with no traceback and no secret; nothing is lost."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import SSHServer, clone, commit, environment, make, published, sh

TOOL = (sys.executable, "-m", "tools.remote")


def tracked_file(work: Path, name: str, size: int) -> bytes:
    """A new DVC-tracked file of random bytes, committed; its content."""
    content = os.urandom(size)
    (work / name).write_bytes(content)
    sh(work, "dvc", "add", name)
    sh(work, "git", "add", f"{name}.dvc", ".gitignore")
    commit(work, f"Add {name}")
    return content


def failed_in_one_line(result: subprocess.CompletedProcess, start: str) -> str:
    """The one line of a failed tool run, checked: starts with start, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), result.stderr
    return lines[0]


def files(folder: Path) -> dict[str, bytes]:
    """Every file of a workspace but git's and DVC's own (.git, .dvc/tmp, .dvc/cache)."""
    skip = (".git/", ".dvc/tmp/", ".dvc/cache/")
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and not str(path.relative_to(folder)).startswith(skip)
    }


def arriving(folder: Path) -> bool:
    """Has a file in folder begun to receive bytes?"""
    try:
        return any(path.stat().st_size for path in folder.iterdir())
    except OSError:  # not there yet, or renamed while looked at
        return False


def test_a_push_cut_by_the_server_dying_completes_once_it_is_back(
    repo: Path, ssh_server: SSHServer, tmp_path: Path
) -> None:
    """The server is killed while a 256 MB file is on its way; the push fails in one line and
    leaves a temporary file, never a short one under the object's name (DVC uploads to a
    temporary name and renames). Restarted, the next push sends it whole."""
    work = published(repo, ssh_server, tmp_path / "a")
    big = tracked_file(work, "big.bin", 256 * 2**20)
    md5 = hashlib.md5(big, usedforsecurity=False).hexdigest()  # DVC names objects by it
    landing = ssh_server.root / "files/md5" / md5[:2]
    push = subprocess.Popen(
        (*TOOL, "push"), cwd=work, env=environment(work), stderr=subprocess.PIPE, text=True
    )
    while push.poll() is None and not arriving(landing):
        pass  # the first bytes of big.bin are on the server: kill it now
    ssh_server.stop()
    _, stderr = push.communicate()
    result = subprocess.CompletedProcess(push.args, push.returncode, "", stderr)
    failed_in_one_line(result, f"error: dvc push to remote 'team' ({ssh_server.url}) failed: ")
    left = [path.name for path in landing.iterdir()]
    assert len(left) == 1 and left[0].endswith(".tmp"), f"a cut upload left {left}"

    ssh_server.start()
    make(work, "push")
    assert (landing / md5[2:]).read_bytes() == big
    fresh = clone(work, tmp_path / "b")
    make(fresh, "pull")
    assert files(fresh) == files(work)


def test_a_pull_from_a_stopped_server_is_one_line_and_changes_nothing(
    repo: Path, ssh_server: SSHServer, tmp_path: Path
) -> None:
    """A teammate moves to a commit whose data the team pushed, while the server is down:
    `make pull` fails in one line naming the remote, and every file stays as it was."""
    work = published(repo, ssh_server, tmp_path / "a")
    fresh = clone(work, tmp_path / "b")
    make(fresh, "pull")
    tracked_file(work, "more.bin", 2**20)
    make(work, "push")
    sh(fresh, "git", "pull", "-q")
    before = files(fresh)
    ssh_server.stop()
    try:
        result = sh(fresh, *TOOL, "pull", check=False)
    finally:
        ssh_server.start()
    line = failed_in_one_line(
        result, f"error: dvc pull from remote 'team' ({ssh_server.url}) failed: "
    )
    assert "refused" in line.lower() or "connect" in line.lower(), line
    assert files(fresh) == before


def test_two_clones_pushing_at_once_leave_a_remote_both_can_pull_from(
    repo: Path, ssh_server: SSHServer, tmp_path: Path
) -> None:
    """Two members push at the same moment: the same run (the same objects, written twice at
    once) and a file each. A fresh clone of each pulls every byte of its own."""
    members = [published(repo, ssh_server, tmp_path / name, push=False) for name in "ab"]
    for index, work in enumerate(members):
        tracked_file(work, f"member{index}.bin", 8 * 2**20)
    pushes = [
        subprocess.Popen(
            (*TOOL, "push"),
            cwd=work,
            env=environment(work),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for work in members
    ]
    for push in pushes:
        _, stderr = push.communicate()
        assert push.returncode == 0, stderr
    for index, work in enumerate(members):
        fresh = clone(work, tmp_path / f"fresh{index}")
        make(fresh, "pull")
        assert files(fresh) == files(work)


def keygen(path: Path, passphrase: str = "") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True
    )
    return path


@pytest.mark.parametrize("fault", ["wrong key", "untrusted host key", "unknown host"])
def test_a_wrong_key_or_host_is_one_line_with_no_secret(
    fault: str, repo: Path, ssh_server: SSHServer, tmp_path: Path
) -> None:
    """A key the server does not know (protected by a passphrase in .dvc/config.local), a
    server whose host key is not the one known_hosts trusts, and a host name that does not
    resolve (with a password in the URL): one line, naming the remote, with neither the
    key, its passphrase nor the password in it."""
    work = published(repo, ssh_server, tmp_path / "a", push=False)
    secrets = ["hunter2-passphrase", "hunter2-password"]
    url = ssh_server.url
    if fault == "wrong key":
        key = keygen(tmp_path / "other_key", secrets[0])
        secrets.append(key.read_text().splitlines()[1])  # a line of the private key
        sh(work, "dvc", "remote", "modify", "--local", "team", "keyfile", str(key))
        sh(work, "dvc", "remote", "modify", "--local", "team", "passphrase", secrets[0])
    elif fault == "untrusted host key":
        host_key = keygen(tmp_path / "impostor").with_suffix(".pub").read_text().split()[:2]
        known = ssh_server.home / ".ssh/known_hosts"
        trusted = known.read_text()
        known.write_text(f"[127.0.0.1]:{ssh_server.port} {' '.join(host_key)}\n")
    else:
        url = "ssh://root:hunter2-password@no-such-host.invalid/srv/dvc"
        sh(work, "dvc", "remote", "modify", "--local", "team", "url", url)
    try:
        result = sh(work, *TOOL, "push", check=False)
    finally:
        if fault == "untrusted host key":
            known.write_text(trusted)
    shown = url.replace("hunter2-password", "***")
    line = failed_in_one_line(result, f"error: dvc push to remote 'team' ({shown}) failed: ")
    for secret in secrets:
        assert secret not in result.stdout + result.stderr
    cause = {
        "wrong key": "permission denied",
        "untrusted host key": "host key",
        "unknown host": "no-such-host.invalid",
    }[fault]
    assert cause in line.lower(), line
