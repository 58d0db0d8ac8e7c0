"""Outputs appear whole or not at all, and a write that fails says so in one line.

DVC deletes a stage's outputs before running it; if the stage then dies half-way, what
is on disk must not look like a finished output. Each stage therefore writes into a
hidden sibling and renames it into place only after everything in it is complete.

A write fails for reasons the user fixes, not the code: a full disk, a quota, a read-only
filesystem, a folder they may not write. Whatever raised it (Python, numpy, h5py through
Keras, matplotlib), it becomes one line naming the output and the reason, and the staged
sibling is removed with whatever part of it was written.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rowlstm.errors import UserError, one_line


@contextmanager
def writing(target: Path) -> Iterator[None]:
    """Turn an OSError raised while writing `target` into a UserError naming it."""
    try:
        yield
    except OSError as error:
        # numpy says "274400 requested and 141280 written" of a full disk, with no errno:
        # then the free space says what the words do not.
        reason = error.strerror or f"{one_line(error)}; {_free_bytes(target):,} bytes free there"
        raise UserError(f"{target}: cannot write ({reason})") from None


def _free_bytes(target: Path) -> int:
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty folder that replaces `target` only if the block succeeds."""
    staging = None
    try:
        with writing(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            yield staging
            staging.chmod(0o755)
            old = target.with_name(f".{target.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path that atomically replaces `target` only if the block succeeds."""
    staging = None
    try:
        with writing(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
            os.close(fd)
            staging = Path(name)
            yield staging
            staging.chmod(0o644)
            os.replace(staging, target)
    finally:
        if staging is not None:
            staging.unlink(missing_ok=True)
