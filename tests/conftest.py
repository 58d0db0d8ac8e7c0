"""Fixtures and hooks only: what they build comes from tests/helpers.py and tests/e2e.py."""

import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import SSHServer, make_repo, sh, stale
from tests.helpers import write_mirror, write_prepared


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, dict]:
    """A gzip mirror directory of tiny synthetic MNIST and its pins."""
    folder = tmp_path / "mirror"
    return folder, write_mirror(folder)


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    """Uncompressed tiny MNIST as the download stage leaves it in data/raw."""
    folder = tmp_path / "raw"
    write_mirror(folder, gz=False)
    return folder


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A folder laid out as the train stage expects: tiny MNIST in data/prepared, prepared
    with the tiny params. One per test module: its tests may write next to data/."""
    root = tmp_path_factory.mktemp("prepared")
    write_prepared(root / "data/prepared")
    return root


@pytest.fixture(scope="session")
def repo(tmp_path_factory) -> Path:
    """A git+DVC copy of this repo, reproduced once on tiny data and committed.

    Under pytest-xdist it is built once for all workers (the first to come builds it, the
    others wait on a lock) and each worker gets its own copy: the build runs every stage,
    the copy takes a fraction of a second."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return make_repo(tmp_path_factory.mktemp("e2e"))
    session = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    built = session / "e2e"
    with (session / "e2e.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (built / "done").exists():
            shutil.rmtree(built, ignore_errors=True)
            built.mkdir()
            make_repo(built)
            (built / "done").touch()
    copy = tmp_path_factory.mktemp("e2e")
    shutil.copytree(built, copy, symlinks=True, dirs_exist_ok=True)
    return copy / "repo"


@pytest.fixture
def restore(repo: Path) -> Iterator[Path]:
    """The e2e repo, put back to its committed run afterwards (git, then DVC's cache)."""
    yield repo
    sh(repo, "git", "checkout", "--", ".")
    sh(repo, "dvc", "checkout", "--force")
    assert stale(repo) == set()


def pytest_addoption(parser: pytest.Parser) -> None:
    """`make screenshot`'s: the browser test of the drawing page (tests/test_page.py) on
    the pipeline's own model, saving what it shows."""
    parser.addoption("--drawing-model", type=Path, help="the model the drawing page serves")
    parser.addoption("--screenshot", type=Path, help="save the drawing page here")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow every test on the e2e repo (fixture `repo`, or one built on it), on the
    trained tiny pipeline (`prepared`) or on a model trained on real MNIST (`mnist`), so
    `make check` leaves them out with no list to keep up to date. Tests that train in
    subprocesses carry the mark themselves."""
    for item in items:
        if {"repo", "prepared", "mnist"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real OpenSSH server on loopback for this module's tests (tests/e2e.py's SSHServer),
    HOME pointed at its own while it runs. Where it cannot start the tests skip with the
    reason; under CI (CI=true, which .ci/run's installs make possible) they fail instead."""
    try:
        server = SSHServer(tmp_path_factory.mktemp("ssh"))
        server.start()
    except (OSError, RuntimeError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SSH remote's tests: {error}")
        pytest.skip(f"no OpenSSH server here ({error}): apt-get install openssh-server")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(server.home))
        yield server
    server.stop()
