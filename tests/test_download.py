import gzip
import posixpath
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rowlstm.download_mirrors import Pin, mirror_url
from rowlstm.errors import UserError
from rowlstm.params import DownloadParams
from rowlstm.paths import DownloadPaths
from stages.download import run
from tests.helpers import write_mirror


def pins_of(raw: dict) -> dict[str, Pin]:
    return {name: Pin(**pin) for name, pin in raw.items()}


def params(*mirrors: str) -> DownloadParams:
    return DownloadParams(mirrors=mirrors, timeout=5.0)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_gzip_mirror_directory_gives_verified_uncompressed_files(tmp_path, mirror) -> None:
    folder, pins = mirror
    out = tmp_path / "data" / "raw"
    run(params("https://unused.invalid/"), DownloadPaths(out), pins_of(pins), str(folder))
    assert leftovers(out) == sorted(pins)
    for name, pin in pins.items():
        assert (out / name).stat().st_size == pin["bytes"]
    assert leftovers(out.parent) == ["raw"]


def test_plain_files_and_file_urls_work_too(tmp_path) -> None:
    pins = write_mirror(tmp_path / "plain", gz=False)
    out = tmp_path / "out"
    run(params((tmp_path / "plain").as_uri() + "/"), DownloadPaths(out), pins_of(pins))
    assert leftovers(out) == sorted(pins)


def test_wrong_checksum_fails_every_mirror_and_leaves_nothing(tmp_path, mirror) -> None:
    folder, pins = mirror
    name = "train-labels-idx1-ubyte"
    pins[name]["sha256"] = "0" * 64
    out = tmp_path / "data" / "raw"
    with pytest.raises(UserError) as caught:
        run(params(folder.as_uri()), DownloadPaths(out), pins_of(pins))
    message = str(caught.value)
    assert f"could not download {name} from any mirror" in message
    assert "SHA-256 mismatch" in message
    assert "MNIST_MIRROR" in message
    assert leftovers(out.parent) == []


def test_missing_file_is_reported_per_mirror(tmp_path, mirror) -> None:
    folder, pins = mirror
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    other = tmp_path / "empty"
    other.mkdir()
    with pytest.raises(UserError) as caught:
        run(params(other.as_uri()), DownloadPaths(tmp_path / "raw"), pins_of(pins), str(folder))
    message = str(caught.value)
    assert "t10k-images-idx3-ubyte from any mirror" in message
    assert f"{folder.as_uri()}/: t10k-images-idx3-ubyte.gz: not found" in message
    assert f"{other.as_uri()}: " in message
    assert leftovers(tmp_path / "raw") == []


def test_failover_to_the_second_mirror(tmp_path, mirror) -> None:
    folder, pins = mirror
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in pins:  # same names, wrong content: refused, then the next mirror is used
        (broken / f"{name}.gz").write_bytes(gzip.compress(b"not mnist"))
    out = tmp_path / "raw"
    run(params(folder.as_uri()), DownloadPaths(out), pins_of(pins), str(broken))
    assert leftovers(out) == sorted(pins)


def test_a_failed_download_keeps_the_earlier_good_one(tmp_path, mirror) -> None:
    folder, pins = mirror
    out = tmp_path / "raw"
    run(params(folder.as_uri()), DownloadPaths(out), pins_of(pins))
    before = {name: (out / name).read_bytes() for name in pins}
    with pytest.raises(UserError):
        run(params((tmp_path / "nowhere").as_uri()), DownloadPaths(out), pins_of(pins))
    assert {name: (out / name).read_bytes() for name in pins} == before
    assert leftovers(tmp_path) == ["mirror", "raw"]


def test_oversized_payload_is_refused(tmp_path, mirror) -> None:
    folder, pins = mirror
    name = "train-labels-idx1-ubyte"
    (folder / f"{name}.gz").write_bytes(gzip.compress(b"\0" * (pins[name]["bytes"] * 50)))
    with pytest.raises(UserError, match=r"more than the expected \d+ bytes; refused"):
        run(params(folder.as_uri()), DownloadPaths(tmp_path / "raw"), pins_of(pins))


def test_mirror_env_accepts_directories_and_refuses_other_schemes(tmp_path) -> None:
    assert mirror_url(str(tmp_path)) == tmp_path.as_uri() + "/"
    assert mirror_url("https://example.org/mnist/") == "https://example.org/mnist/"
    with pytest.raises(UserError, match="only a directory or a http/https/file URL"):
        mirror_url("ftp://example.org/mnist/")


@pytest.fixture
def http_mirror(mirror) -> Iterator[tuple[str, dict, list[str]]]:
    """Serve the tiny mirror on 127.0.0.1, well or badly depending on the first path part.

    /good/ serves the files; /bad/ answers 500 and /gone/ 404; /cut/ closes the connection
    half-way through a body; /stall/ sends half a body and then nothing; /redirect/ points
    to a file:// URL; /bomb/ serves a gzip that inflates to 50 times the pinned size;
    /forged/ serves well-formed gzip of the wrong bytes. Logs each path.
    """
    folder, pins = mirror
    requests: list[str] = []
    released = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            prefix, _, name = posixpath.normpath(self.path).rpartition("/")
            plain = name.removesuffix(".gz")
            if prefix == "/bad":
                self.send_error(500)
            elif prefix == "/redirect":
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.end_headers()
            elif prefix == "/bomb" and name.endswith(".gz"):
                self.send_body(gzip.compress(b"\0" * pins[plain]["bytes"] * 50, mtime=0))
            elif prefix == "/forged" and name.endswith(".gz"):
                self.send_body(gzip.compress(b"\1" * pins[plain]["bytes"], mtime=0))
            elif prefix in ("/good", "/cut", "/stall") and (folder / name).exists():
                body = (folder / name).read_bytes()
                if prefix == "/good":
                    self.send_body(body)
                else:
                    self.send_body(body, stop=len(body) // 2)
                    if prefix == "/stall":
                        released.wait(10)
            else:
                self.send_error(404)

        def send_body(self, body: bytes, stop: int | None = None) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:stop])
            self.wfile.flush()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", pins, requests
    released.set()
    server.shutdown()
    server.server_close()


def test_http_mirror_with_failover_past_500_and_404(tmp_path, http_mirror) -> None:
    base, pins, requests = http_mirror
    out = tmp_path / "raw"
    run(params(f"{base}/bad/", f"{base}/gone/", f"{base}/good/"), DownloadPaths(out), pins_of(pins))
    assert leftovers(out) == sorted(pins)
    name = next(iter(pins))
    assert requests[:5] == [
        f"/bad/{name}.gz",
        f"/bad/{name}",
        f"/gone/{name}.gz",
        f"/gone/{name}",
        f"/good/{name}.gz",
    ]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("bad", r"HTTP 500 Internal Server Error"),
        ("gone", r"\.gz: HTTP 404 Not Found, \S+: HTTP 404 Not Found"),
        ("refused", r"Connection refused"),
        ("cut", r"\.gz: (IncompleteRead|Compressed file ended)"),
        ("stall", r"\.gz: timed out"),
        ("bomb", r"\.gz: more than the expected \d+ bytes; refused"),
        ("forged", r"\.gz: SHA-256 mismatch"),
        ("redirect", r"\.gz: redirect to 'file:///etc/passwd' refused \(only http/https\)"),
    ],
)
def test_http_faults_fail_clearly_and_keep_the_good_download(
    tmp_path, http_mirror, path, reason
) -> None:
    base, pins, _ = http_mirror
    out = tmp_path / "data" / "raw"
    run(params(f"{base}/good/"), DownloadPaths(out), pins_of(pins))
    before = {name: (out / name).read_bytes() for name in pins}
    mirror = f"http://127.0.0.1:{closed_port()}/" if path == "refused" else f"{base}/{path}/"
    started = time.monotonic()
    with pytest.raises(UserError, match=r"^could not download \S+ from any mirror") as caught:
        run(DownloadParams(mirrors=(mirror,), timeout=0.5), DownloadPaths(out), pins_of(pins))
    assert time.monotonic() - started < 5  # a stalled server costs the timeout, not forever
    assert re.search(f"{re.escape(mirror)}: .*{reason}", str(caught.value))
    assert "\n" not in str(caught.value)
    assert {name: (out / name).read_bytes() for name in pins} == before
    assert leftovers(out.parent) == ["raw"]  # no partial file, no staging folder
    assert leftovers(out) == sorted(pins)


def test_mirror_urls_cannot_steer_where_files_are_written(tmp_path, http_mirror) -> None:
    """Names come from the pins, never from a URL or a redirect: ../ in a mirror is harmless."""
    base, pins, _ = http_mirror
    out = tmp_path / "repo" / "data" / "raw"
    run(params(f"{base}/good/../../good/"), DownloadPaths(out), pins_of(pins))
    assert leftovers(out) == sorted(pins)
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    expected = {"repo", "repo/data", "repo/data/raw"} | {f"repo/data/raw/{n}" for n in pins}
    assert {path for path in written if not path.startswith("mirror")} == expected
