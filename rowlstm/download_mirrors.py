"""Fetching the pinned MNIST files from mirrors (the download stage's): a file: directory, or
http(s) with bounded reads, safe redirects and a timeout, each file verified against its
pinned size and SHA-256 before it counts."""

import errno
import gzip
import hashlib
import http.client
import json
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO, NamedTuple
from urllib.parse import urljoin, urlparse

from tqdm import tqdm

from rowlstm.errors import UserError
from rowlstm.params import MIRROR_SCHEMES

PINS = Path(__file__).with_name("mnist.json")


CHUNK = 1 << 20


# Failures of the write into data/raw, which no other mirror can mend.
LOCAL_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


class Pin(NamedTuple):
    bytes: int
    sha256: str


class MirrorError(Exception):
    """One mirror could not serve one file; the next mirror is tried."""


def load_pins(path: Path = PINS) -> dict[str, Pin]:
    """The files to fetch, with the size and SHA-256 of each decompressed payload."""
    return {name: Pin(**pin) for name, pin in json.loads(path.read_text()).items()}


def mirror_url(value: str) -> str:
    """Normalise MNIST_MIRROR: a plain directory becomes a file:// URL."""
    if "://" not in value:
        return Path(value).resolve().as_uri() + "/"
    if urlparse(value).scheme not in MIRROR_SCHEMES:
        raise UserError(
            f"MNIST_MIRROR={value!r}: only a directory or a {'/'.join(MIRROR_SCHEMES)} URL works"
        )
    return value


def fetch_one(
    name: str,
    pin: Pin,
    mirrors: list[str],
    unreachable: dict[str, str],
    staging: Path,
    timeout: float,
) -> None:
    failures = []
    for mirror in mirrors:
        if mirror in unreachable:
            failures.append(f"{mirror}: {unreachable[mirror]}")
            continue
        reasons = []
        for candidate in (f"{name}.gz", name):
            url = mirror.rstrip("/") + "/" + candidate
            try:
                _fetch(url, pin, staging / name, timeout)
                return
            except urllib.error.HTTPError as error:
                reasons.append(f"{candidate}: HTTP {error.code} {error.reason}")
            except MirrorError as error:
                reasons.append(f"{candidate}: {error}")
                break  # the mirror served this file and it was wrong: no plain fallback
            except urllib.error.URLError as error:
                reason = _reason(error.reason)
                if isinstance(error.reason, FileNotFoundError):
                    reasons.append(f"{candidate}: not found")
                    continue
                unreachable[mirror] = reason
                reasons.append(reason)
                break
            except (OSError, EOFError, zlib.error, http.client.HTTPException) as error:
                if isinstance(error, OSError) and error.errno in LOCAL_WRITE_ERRORS:
                    raise  # our disk, not the mirror: staged_dir names data/raw
                reasons.append(f"{candidate}: {_reason(error)}")
                break
        failures.append(f"{mirror}: {', '.join(reasons)}")
    raise UserError(
        f"could not download {name} from any mirror ({'; '.join(failures)}); "
        "set MNIST_MIRROR to a directory or http(s)/file URL holding the MNIST files, "
        "e.g. MNIST_MIRROR=/path/to/mnist dvc repro"
    )


def _fetch(url: str, pin: Pin, target: Path, timeout: float) -> None:
    """Stream url into target, decompressing .gz, bounded by the pinned size, then verify."""
    with _opener().open(url, timeout=timeout) as response:
        size = response.headers.get("Content-Length")
        total = int(size) if size and size.isdigit() else None
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=url.rsplit("/", 1)[-1],
            leave=False,
            disable=None,
        ) as bar:
            stream: BinaryIO = _Counting(response, bar)
            if url.endswith(".gz"):
                stream = gzip.GzipFile(fileobj=stream, mode="rb")
            digest = _copy_bounded(stream, target, pin.bytes)
    if digest != pin.sha256:
        target.unlink()
        raise MirrorError(f"SHA-256 mismatch (got {digest[:12]}…, expected {pin.sha256[:12]}…)")


def _copy_bounded(stream: BinaryIO, target: Path, limit: int) -> str:
    digest = hashlib.sha256()
    written = 0
    try:
        with target.open("wb") as out:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise MirrorError(f"more than the expected {limit} bytes; refused")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if written != limit:
        target.unlink()
        raise MirrorError(f"{written} bytes, expected {limit}")
    return digest.hexdigest()


class _Counting:
    """A read-only stream wrapper that advances a progress bar."""

    def __init__(self, raw: BinaryIO, bar: tqdm) -> None:
        self.raw, self.bar = raw, bar

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.bar.update(len(chunk))
        return chunk


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s): never to file://, ftp:// or anything else."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("Location") or headers.get("URI") or ""
        target = urljoin(req.full_url, location)
        if urlparse(target).scheme not in ("http", "https"):
            raise MirrorError(f"redirect to {target!r} refused (only http/https)")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.FileHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        _SafeRedirect(),
    ):
        opener.add_handler(handler)
    return opener


def _reason(error: object) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
