"""The drawing page (tools/serve.py): its server over HTTP on untrained models, then the
page itself in a real browser, Debian's headless Chromium driven by Playwright, on a small
model trained on real MNIST (or, with --drawing-model, on the pipeline's own)."""

import base64
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rowlstm.digits import as_mnist
from rowlstm.split_files import load_split
from tests.helpers import (
    HAS_REAL_MNIST,
    NO_REAL_MNIST,
    ROOT,
    SEVEN,
    drawn_digit,
    real_mnist,
    real_mnist_model,
    tiny_train,
)
from tools import serve
from tools.predict import answers_of

LSTM_SIGNALS = ["input gate", "forget gate", "output gate", "c", "h"]
BROKEN_PNG = b"\x89PNG\r\n\x1a\nnot the rest of a PNG"


def saved_model(folder: Path, **changes: object) -> Path:
    """An untrained model of the tiny train params with these changes: the server's
    answers have their shapes whatever the weights."""
    from rowlstm.model import build_model, save_model

    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(tiny_train(**changes), steps_per_epoch=1)
    model.optimizer.build(model.trainable_variables)  # saved as a trained model's would be
    save_model(model, folder / "model.keras")
    return folder / "model.keras"


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved_model(tmp_path_factory.mktemp("untrained"))


@contextmanager
def serving(model: Path) -> Iterator[str]:
    """tools.serve's server in a thread of this process; its base URL."""
    server = serve.Server(("127.0.0.1", 0))
    server.reader = serve.Reader(model)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def read_json(body: object) -> bytes:
    return json.dumps(body).encode()


def image_body(image: bytes) -> bytes:
    return read_json({"image": "data:image/png;base64," + base64.b64encode(image).decode()})


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def raw_request(url: str, head: bytes) -> tuple[int, dict]:
    """Send only this request head (no body follows) and read the answer."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        answer = b"".join(iter(lambda: connection.recv(65536), b""))
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def test_the_page_s_files_are_served_with_a_policy_that_forbids_the_network(
    site_untrained: str,
) -> None:
    url = site_untrained
    for path, kind in [("/", "text/html"), ("/page.js", "text/javascript")]:
        with urllib.request.urlopen(url + path) as response:
            assert response.headers.get_content_type() == kind
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = urllib.request.urlopen(url + "/").read().decode()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from elsewhere
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(url + "/nope")
    assert missing.value.code == 404
    assert json.load(missing.value) == {"error": "/nope: no such page (the page is /)"}


BLANK = np.full((200, 200), 255, np.uint8)
NO_ANSWER = "\u2013"  # the page's answer before it has one


def huge_png() -> bytes:
    """A valid PNG of 5000x5000 pixels, a few kB: over MAX_PIXELS by its header alone."""
    buffer = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def site_untrained(untrained: Path) -> Iterator[str]:
    with serving(untrained) as url:
        yield url


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"x", "text/plain", 415, "expected Content-Type application/json, got text/plain"),
        (b"{bad", "application/json", 400, "the body is not JSON (Expecting property name"),
        (b"[1]", "application/json", 400, 'expected a JSON object {"image": '),
        (read_json({"image": "@@@"}), "application/json", 400, '"image" is not valid base64'),
        (image_body(BROKEN_PNG), "application/json", 422, "the image: not a readable PNG"),
        (image_body(png(BLANK)), "application/json", 422, "no digit found: draw one"),
        (image_body(huge_png()), "application/json", 422, "the image: refused, far too large"),
    ],
    ids=["type", "json", "object", "base64", "broken", "blank", "huge"],
)
def test_a_bad_request_is_a_4xx_with_one_line(
    site_untrained: str, body: bytes, content_type: str, status: int, message: str
) -> None:
    got, answer = post(site_untrained + "/read", body, content_type)
    assert (got, list(answer)) == (status, ["error"])
    assert answer["error"].startswith(message) and "\n" not in answer["error"]
    assert post(site_untrained + "/read", image_body(png(drawn_digit(SEVEN))))[0] == 200


def test_a_body_too_large_or_unmeasured_is_refused_unread(site_untrained: str) -> None:
    url = site_untrained
    head = "POST /read HTTP/1.0\r\nContent-Type: application/json\r\n"
    too_large = f"{head}Content-Length: {serve.MAX_BODY + 1}\r\n\r\n".encode()
    assert raw_request(url, too_large) == (
        413,
        {"error": f"the body is {serve.MAX_BODY + 1:,} bytes; at most {serve.MAX_BODY:,}"},
    )
    assert raw_request(url, f"{head}\r\n".encode()) == (
        411,
        {"error": "the request has no Content-Length"},
    )
    assert raw_request(url, b"PUT /read HTTP/1.0\r\n\r\n") == (
        405,
        {"error": "PUT: only GET and POST"},
    )
    assert post(url + "/x", b"{}") == (404, {"error": "/x: POST an image to /read"})


def test_a_slow_body_times_out_and_a_full_house_is_told_to_wait(
    untrained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve.Handler, "timeout", 0.5)
    monkeypatch.setattr(serve, "MAX_IN_FLIGHT", 1)
    with serving(untrained) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as idle:  # holds the one slot
            idle.sendall(b"POST /read HTTP/1.0\r\nContent-Type: application/json\r\n")
            time.sleep(0.1)
            assert raw_request(url, b"GET / HTTP/1.0\r\n\r\n") == (
                503,
                {"error": "busy: too many requests at once, try again"},
            )
            idle.sendall(b"Content-Length: 10\r\n\r\n{")
            answer = b"".join(iter(lambda: idle.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.0 408 ")
        assert answer.endswith(b'{"error": "the body took over 0.5 s to arrive"}')
        deadline = time.monotonic() + 5
        while post(url + "/read", b"{}")[0] == 503 and time.monotonic() < deadline:
            time.sleep(0.05)  # the slot is free once the timed-out thread has ended
        assert post(url + "/read", b"{}")[0] == 400


def test_the_page_s_answer_is_predict_s(
    untrained: Path, site_untrained: str, tmp_path: Path
) -> None:
    digit = tmp_path / "seven.png"
    digit.write_bytes(png(255 - drawn_digit(SEVEN)))  # black on white, as the pad draws
    status, answer = post(site_untrained + "/read", image_body(digit.read_bytes()))
    assert status == 200
    assert np.array_equal(answer["image"], as_mnist(255 - drawn_digit(SEVEN)))
    [(_, rows)] = answers_of(untrained, [digit], every_row=True)
    assert np.allclose(answer["rows"], rows, atol=1e-4) and len(answer["rows"]) == 28
    assert answer["probabilities"] == answer["rows"][-1]
    assert answer["digit"] == int(rows[-1].argmax())
    assert {name: np.shape(v) for name, v in answer["signals"].items()} == dict.fromkeys(
        LSTM_SIGNALS, (28, tiny_train().units)
    )


@pytest.mark.parametrize(
    ("changes", "signals"),
    [
        ({"cell": "gru"}, ["update gate", "reset gate", "h"]),
        ({"cell": "simple_rnn"}, ["h"]),
        ({"bidirectional": True}, LSTM_SIGNALS),
    ],
)
def test_each_cell_sends_its_own_signals(tmp_path: Path, changes: dict, signals: list) -> None:
    reader = serve.Reader(saved_model(tmp_path, **changes))
    answer = reader.read(png(drawn_digit(SEVEN)))
    assert list(answer["signals"]) == signals
    assert answer["cell"] == {"gru": "GRU", "simple_rnn": "SimpleRNN"}.get(
        changes.get("cell"), "LSTM"
    )
    if changes.get("bidirectional"):
        assert answer["rows"] is None
        assert answer["why"].startswith("No answer after each row: a bidirectional model")
    else:
        assert len(answer["rows"]) == 28 and answer["why"] is None


def start(model: Path, port: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tools.serve", "--model", str(model), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def served(model: Path) -> Iterator[str]:
    """`python -m tools.serve` (as `make serve` runs it) on a free port; the URL it prints."""
    server = start(model)
    try:
        line = server.stdout.readline()
        found = re.fullmatch(r"Serving the drawing page at (http://127.0.0.1:\d+/) .*\n", line)
        assert found, line + server.stderr.read()
        yield found[1]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_prints_its_url_and_a_taken_port_is_one_line(untrained: Path) -> None:
    with served(untrained) as url:
        assert urllib.request.urlopen(url).status == 200
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        taken = start(untrained, port)
        _, stderr = taken.communicate(timeout=60)
    assert taken.returncode == 1
    assert stderr == f"error: cannot listen on 127.0.0.1:{port} (Address already in use)\n"


# The page in a real browser.

# Debian's package, Ubuntu's, or Google's (GitHub's runners have it).
BROWSERS = ["chromium", "chromium-browser", "google-chrome"]
CHROMIUM = next(filter(None, map(shutil.which, BROWSERS)), None)
NO_BROWSER = "no Chromium to drive: apt-get install chromium (.ci/run does)"


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict:
    """The model the page serves, and MNIST test digits: the pipeline's model given with
    --drawing-model, else a small one trained here on real MNIST."""
    if not HAS_REAL_MNIST:
        pytest.skip(NO_REAL_MNIST)
    root = tmp_path_factory.mktemp("mnist")
    model = request.config.getoption("--drawing-model") or real_mnist_model(root)
    x, y = load_split(real_mnist(root) / "test")
    return {"model": model, "x": x, "y": y}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail(f"{NO_BROWSER}: CI must run the browser test, never skip it")
        pytest.skip(NO_BROWSER)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(mnist: dict, browser: object) -> Iterator[str]:
    with served(mnist["model"]) as url:
        yield url


@pytest.fixture
def page(browser: object, site: str) -> Iterator[object]:
    """The page, opened; afterwards, no script error and no request anywhere but the server."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, elsewhere = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda r: r.url.startswith(site) or elsewhere.append(r.url))
    page.goto(site)
    yield page
    page.close()
    assert (errors, elsewhere) == ([], [])


def draw(page: object, strokes: list[list[tuple[int, int]]]) -> None:
    """Each stroke with the mouse, on the pad's 280x280 pixels."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()


def drop(page: object, name: str, content: bytes) -> None:
    """A file dropped on the pad, as a file manager drops one."""
    page.evaluate(
        """([name, encoded]) => {
            const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
            const files = new DataTransfer();
            files.items.add(new File([bytes], name, { type: "image/png" }));
            const event = new DragEvent("drop", { dataTransfer: files, bubbles: true });
            document.getElementById("pad").dispatchEvent(event);
        }""",
        [name, base64.b64encode(content).decode()],
    )


def seen(page: object) -> np.ndarray:
    """The 28x28 image the page shows as the model's input."""
    values = page.evaluate(
        """() => Array.from(document.getElementById("seen").getContext("2d")
               .getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0))"""
    )
    return np.array(values, np.uint8).reshape(28, 28)


def record(screenshot: Path, model: Path) -> None:
    """Beside the screenshot, as tools/figures.py's manifest records each picture: the model
    it shows (its DVC hash) and the picture's own hash (tests/test_docs.py checks both)."""
    entry = {
        "source": "models/model.keras",
        "source_md5": hashlib.md5(model.read_bytes(), usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(screenshot.read_bytes()).hexdigest(),
    }
    text = json.dumps({screenshot.name: entry}, indent=2) + "\n"
    screenshot.with_suffix(".json").write_text(text)


def test_a_seven_drawn_with_the_mouse_is_read_as_a_seven(
    page: object, mnist: dict, request: pytest.FixtureRequest
) -> None:
    draw(page, SEVEN)
    page.wait_for_selector("body[data-state=read]")
    assert page.locator("#answer").text_content() == "7"
    rows = page.locator("#rows tbody tr")
    assert rows.count() == 28
    assert rows.nth(27).get_attribute("data-guess") == "7"
    assert seen(page).max() == 255 and seen(page)[:, :4].max() == 0  # the prepared digit
    maps = page.locator("#signals canvas")
    assert [maps.nth(i).get_attribute("data-signal") for i in range(maps.count())] == LSTM_SIGNALS
    screenshot = request.config.getoption("--screenshot")
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
        record(screenshot, Path(mnist["model"]))
    page.click("#clear")
    assert page.locator("#answer").text_content() == NO_ANSWER
    assert page.locator("#reading").is_hidden()


def test_a_dropped_test_digit_is_read_as_predict_reads_it(
    page: object, mnist: dict, tmp_path: Path
) -> None:
    index = int(np.flatnonzero(mnist["y"] == 4)[0])
    pixels = np.rint(mnist["x"][index] * 255).astype(np.uint8)
    digit = tmp_path / "four.png"
    digit.write_bytes(png(pixels))
    drop(page, "four.png", digit.read_bytes())
    page.wait_for_selector("body[data-state=read]")
    [(_, rows)] = answers_of(Path(mnist["model"]), [digit], every_row=True)
    assert page.locator("#answer").text_content() == str(rows[-1].argmax())
    assert np.array_equal(seen(page), pixels)  # MNIST's own form goes in as it is


def test_a_broken_file_dropped_is_one_line_on_the_page(page: object) -> None:
    drop(page, "broken.png", BROKEN_PNG)
    page.wait_for_selector("body[data-state=error]")
    assert page.locator("#error").text_content() == "the image: not a readable PNG or JPEG image"
    assert page.locator("#answer").text_content() == NO_ANSWER
    assert page.locator("#reading").is_hidden()
