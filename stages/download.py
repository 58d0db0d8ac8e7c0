"""Stage 1: fetch the four MNIST IDX files from the first mirror that serves them intact.

Each file is verified against its pinned SHA-256 (rowlstm/mnist.json), so a user's own
mirror (MNIST_MIRROR) is as good as the public ones, and all four replace data/raw only
once every one is verified. The fetching: rowlstm/download_mirrors.py.
"""

import os

from rowlstm.atomic import staged_dir
from rowlstm.download_mirrors import Pin, fetch_one, load_pins, mirror_url
from rowlstm.errors import cli
from rowlstm.params import DownloadParams, load_params
from rowlstm.paths import DownloadPaths


def run(
    params: DownloadParams, paths: DownloadPaths, pins: dict[str, Pin], extra_mirror: str = ""
) -> None:
    """Download and verify every pinned file into paths.raw, replacing it only on success."""
    mirrors = ([mirror_url(extra_mirror)] if extra_mirror else []) + list(params.mirrors)
    unreachable: dict[str, str] = {}
    with staged_dir(paths.raw) as staging:
        for name, pin in pins.items():
            fetch_one(name, pin, mirrors, unreachable, staging, params.timeout)


def main() -> None:
    params = load_params()
    run(params.download, DownloadPaths(), load_pins(), os.environ.get("MNIST_MIRROR", ""))


if __name__ == "__main__":
    cli(main)
