import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stages.download import Pin, mirror_url, run
from stages.errors import UserError
from stages.params import DownloadParams
from tests.conftest import write_mirror


def pins_of(raw: dict) -> dict[str, Pin]:
    return {name: Pin(**pin) for name, pin in raw.items()}


def params(*mirrors: str) -> DownloadParams:
    return DownloadParams(mirrors=mirrors, timeout=5.0)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_gzip_mirror_directory_gives_verified_uncompressed_files(tmp_path, mirror) -> None:
    folder, pins = mirror
    out = tmp_path / "data" / "raw"
    run(params("https://unused.invalid/"), out, pins_of(pins), str(folder))
    assert leftovers(out) == sorted(pins)
    for name, pin in pins.items():
        assert (out / name).stat().st_size == pin["bytes"]
    assert leftovers(out.parent) == ["raw"]


def test_plain_files_and_file_urls_work_too(tmp_path) -> None:
    pins = write_mirror(tmp_path / "plain", gz=False)
    out = tmp_path / "out"
    run(params((tmp_path / "plain").as_uri() + "/"), out, pins_of(pins))
    assert leftovers(out) == sorted(pins)


def test_wrong_checksum_fails_every_mirror_and_leaves_nothing(tmp_path, mirror) -> None:
    folder, pins = mirror
    name = "train-labels-idx1-ubyte"
    pins[name]["sha256"] = "0" * 64
    out = tmp_path / "data" / "raw"
    with pytest.raises(UserError) as caught:
        run(params(folder.as_uri()), out, pins_of(pins))
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
        run(params(other.as_uri()), tmp_path / "raw", pins_of(pins), str(folder))
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
    run(params(folder.as_uri()), out, pins_of(pins), str(broken))
    assert leftovers(out) == sorted(pins)


def test_a_failed_download_keeps_the_earlier_good_one(tmp_path, mirror) -> None:
    folder, pins = mirror
    out = tmp_path / "raw"
    run(params(folder.as_uri()), out, pins_of(pins))
    before = {name: (out / name).read_bytes() for name in pins}
    with pytest.raises(UserError):
        run(params((tmp_path / "nowhere").as_uri()), out, pins_of(pins))
    assert {name: (out / name).read_bytes() for name in pins} == before
    assert leftovers(tmp_path) == ["mirror", "raw"]


def test_oversized_payload_is_refused(tmp_path, mirror) -> None:
    folder, pins = mirror
    name = "train-labels-idx1-ubyte"
    (folder / f"{name}.gz").write_bytes(gzip.compress(b"\0" * (pins[name]["bytes"] * 50)))
    with pytest.raises(UserError, match=r"more than the expected \d+ bytes; refused"):
        run(params(folder.as_uri()), tmp_path / "raw", pins_of(pins))


def test_mirror_env_accepts_directories_and_refuses_other_schemes(tmp_path) -> None:
    assert mirror_url(str(tmp_path)) == tmp_path.as_uri() + "/"
    assert mirror_url("https://example.org/mnist/") == "https://example.org/mnist/"
    with pytest.raises(UserError, match="only a directory or a http/https/file URL"):
        mirror_url("ftp://example.org/mnist/")


@pytest.fixture
def http_mirror(mirror) -> Iterator[tuple[str, dict, list[str]]]:
    """Serve the tiny mirror on 127.0.0.1; /bad/ answers 500, /gone/ 404. Logs each path."""
    folder, pins = mirror
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            prefix, _, name = self.path.rpartition("/")
            if prefix == "/bad":
                self.send_error(500)
            elif prefix == "/good" and (folder / name).exists():
                body = (folder / name).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", pins, requests
    server.shutdown()
    server.server_close()


def test_http_mirror_with_failover_past_500_and_404(tmp_path, http_mirror) -> None:
    base, pins, requests = http_mirror
    out = tmp_path / "raw"
    run(params(f"{base}/bad/", f"{base}/gone/", f"{base}/good/"), out, pins_of(pins))
    assert leftovers(out) == sorted(pins)
    name = next(iter(pins))
    assert requests[:5] == [
        f"/bad/{name}.gz",
        f"/bad/{name}",
        f"/gone/{name}.gz",
        f"/gone/{name}",
        f"/good/{name}.gz",
    ]
