"""A team's DVC remote in one step, and push and pull that carry the run-cache whole.

    python -m tools.remote add URL [--key FILE] [--local]   (make remote URL=... KEY=...)
    python -m tools.remote push                             (make push)
    python -m tools.remote pull                             (make pull)

`add` makes URL the default remote, named `team`, in .dvc/config (commit it: every clone
then knows where the team's results are), or with --local in .dvc/config.local, which git
ignores (CI's, from a secret). The key's path always goes to .dvc/config.local.

`push` is `dvc push --run-cache` and one thing more. DVC 3 sends the run-cache's entries
(which params and code gave which outputs) but not the outputs of runs other than the
workspace's: a teammate whose params another member already ran finds the entry, misses
its files and trains. So `push` also sends the files of every run-cache entry, the
git-tracked outputs (`cache: false`) included, which DVC keeps in its cache for this.
`pull` is `dvc pull --run-cache`; `dvc repro --pull` then fetches a run's files when it
restores that run instead of training it (docs/scaling.md#a-team-remote-over-ssh).

A failure is one line that names the remote and the cause, never a password or a key.
"""

import argparse
import time
from pathlib import Path
from urllib.parse import urlsplit

from rowlstm.errors import UserError, cli
from tools.dvcrun import dvc_captured, reason, shown

NAME = "team"


def default_remote(cwd: Path | None = None) -> tuple[str, str] | None:
    """(name, url) of the default remote of the repository at cwd; None when it has none
    (`dvc remote default` then fails: "No default remote set")."""
    try:
        name = dvc_captured("remote", "default", cwd=cwd).strip()
    except UserError:
        return None
    return (name, dvc_captured("config", f"remote.{name}.url", cwd=cwd).strip()) if name else None


def remote() -> tuple[str, str]:
    """(name, url) of the default remote, or a UserError saying how to add one."""
    found = default_remote()
    if found is None:
        raise UserError("no default DVC remote: add one with `make remote URL=ssh://host/path`")
    return found


def add(url: str, key: Path | None, local: bool) -> None:
    """URL as the default remote NAME, in .dvc/config or, local, .dvc/config.local; key's
    path in .dvc/config.local. Checked first, so that a mistake changes no config."""
    if not urlsplit(url).scheme and not Path(url).is_absolute():
        raise UserError(f"remote URL {url!r}: give one like URL=ssh://user@host/path")
    if key is not None and not key.is_file():
        raise UserError(f"{key}: no such key file")
    where = ["--local"] if local else []
    dvc_captured("remote", "add", *where, "--force", "--default", NAME, url)
    if key is not None:
        dvc_captured("remote", "modify", "--local", NAME, "keyfile", str(key.resolve()))
    kept = ".dvc/config.local (ignored by git)" if local else ".dvc/config"
    print(f"Remote {NAME!r} is {shown(url)}, the default, in {kept}.")
    if not local:
        print("Commit it for the team: git commit -m 'DVC remote' .dvc/config")


def run_cache_files(name: str) -> int:
    """Send every run-cache entry's files to remote name; how many were sent."""
    from dvc.repo import Repo

    with Repo() as repo:
        runs = Path(repo.stage_cache.cache_dir)
        entries = [(path.parent.name, path.name) for path in runs.glob("*/*/*")]
        used = repo.stage_cache.get_used_objs(entries, remote=name)
        sent = 0
        for odb, objs in used.items():
            result = repo.cloud.push(objs, remote=name, odb=odb)
            if result.failed:
                raise UserError(f"{len(result.failed)} run-cache files were not sent")
            sent += len(result.transferred)
    return sent


def check_host_key(url: str) -> bool:
    """DVC's SSH plugin connects with asyncssh's known_hosts=None (sshfs 2026.8): it trusts
    any server's key. So the server's key is checked here first, against ~/.ssh/known_hosts
    and ~/.ssh/config as OpenSSH would: a UserError when it is not trusted. False when the
    server cannot be reached (DVC's own error says why), True otherwise, and for any remote
    that is not SSH."""
    parts = urlsplit(url)
    if parts.scheme != "ssh":
        return True
    import asyncio

    import asyncssh

    where = {"port": parts.port} if parts.port else {}
    who = {"username": parts.username} if parts.username else {}

    async def probe() -> None:
        options = {"preferred_auth": "none", "connect_timeout": 60}
        async with asyncssh.connect(parts.hostname, **where, **who, **options):
            pass

    try:
        asyncio.run(probe())
    except asyncssh.HostKeyNotVerifiable as error:
        hint = "ssh to it once to trust its key, or add its line to ~/.ssh/known_hosts"
        raise UserError(f"{error.reason} ({hint})") from None
    except asyncssh.PermissionDenied:  # it answered; DVC logs in with the real key
        return True
    except (TimeoutError, OSError, asyncssh.Error):
        return False
    return True


def reachable(url: str) -> bool:
    """Whether url's server answers with a trusted key: a quiet check for tools that only
    use a remote when it is there (make quick's --pull)."""
    try:
        return check_host_key(url)
    except UserError:
        return False


def transfer(verb: str) -> None:
    """`push` or `pull` against the default remote, with the run-cache; one line at the end."""
    name, url = remote()
    where = f"dvc {verb} {'to' if verb == 'push' else 'from'} remote {name!r} ({shown(url)})"
    started = time.monotonic()
    try:
        check_host_key(url)
        output = dvc_captured(verb, "--run-cache")
        extra = run_cache_files(name) if verb == "push" else 0
    except UserError as error:
        raise UserError(f"{where} failed: {error}") from None
    except Exception as error:  # DVC's API raises its own types, and asyncssh's
        raise UserError(f"{where} failed: {reason(str(error))}") from None
    summary = (output.strip().splitlines() or ["done"])[-1]
    more = f", and {extra} files of other runs in the run-cache" if extra else ""
    seconds = time.monotonic() - started
    print(f"{verb}: {summary}{more} ({name}, {shown(url)}, {seconds:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    adding = commands.add_parser("add", help="make URL the default remote")
    adding.add_argument("url")
    adding.add_argument("--key", type=Path, help="the SSH key file (kept in .dvc/config.local)")
    adding.add_argument("--local", action="store_true", help="in .dvc/config.local, not git")
    commands.add_parser("push", help="dvc push --run-cache, every run's files included")
    commands.add_parser("pull", help="dvc pull --run-cache")
    args = parser.parse_args()
    if args.command == "add":
        add(args.url, args.key, args.local)
    else:
        transfer(args.command)


if __name__ == "__main__":
    cli(main)
