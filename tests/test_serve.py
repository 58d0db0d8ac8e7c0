"""The drawing page's server (tools/serve.py) over HTTP, on untrained models: its answers,
its limits, and one line for each bad request. The page itself: tests/test_page.py.
Tests of the server wait on events (an answer, a condition polled to a generous deadline),
never on a fixed sleep: the cores may be busy with something else."""

import base64
import io
import json
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from rowlstm.digits import as_mnist
from rowlstm.split_files import save_split, to_sequences
from tests.helpers import (
    BROKEN_PNG,
    LSTM_SIGNALS,
    SEVEN,
    answer_of,
    drawn_digit,
    image_body,
    pixels_of,
    png,
    post,
    read_json,
    served,
    start,
    synthetic_digits,
    tiny_train,
)
from tools import serve
from tools.predict import answers_of


def saved_model(folder: Path, scrambled: bool = False, **changes: object) -> Path:
    """An untrained model of the tiny train params with these changes: the server's
    answers have their shapes whatever the weights. Scrambled, every weight is random,
    biases too (Keras starts them at 0, where a wrong bias would go unseen)."""
    from rowlstm.model import build_model, save_model

    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(tiny_train(**changes), steps_per_epoch=1)
    if scrambled:
        rng = np.random.default_rng(0)
        model.set_weights([rng.normal(0, 0.5, np.shape(w)) for w in model.get_weights()])
    model.optimizer.build(model.trainable_variables)  # saved as a trained model's would be
    save_model(model, folder / "model.keras")
    return folder / "model.keras"


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved_model(tmp_path_factory.mktemp("untrained"))


NO_EXAMPLES = Path("no/such/folder")


@contextmanager
def serving(model: Path | None, test: Path = NO_EXAMPLES) -> Iterator[str]:
    """tools.serve's server in a thread of this process, its examples from the split in
    test (none by default); its base URL. Without a model it answers GET only."""
    server = serve.Server(("127.0.0.1", 0), serve.examples(test, test / "predictions.csv"))
    if model is not None:
        server.reader = serve.Reader(model)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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


def huge_png() -> bytes:
    """A valid PNG of 5000x5000 pixels, a few kB: over MAX_PIXELS by its header alone."""
    buffer = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buffer, format="PNG")
    return buffer.getvalue()


def dash(length: int = 6, pen: int = 20, side: int = 280) -> np.ndarray:
    """Black on white, as the pad sends it: a horizontal stroke of the pad's round pen,
    drawn at 4x and shrunk (anti-aliased, as a canvas draws)."""
    canvas = Image.new("L", (4 * side, 4 * side), 255)
    draw, r, y = ImageDraw.Draw(canvas), 2 * pen, 4 * side // 2
    left, right = 4 * (side - length) // 2, 4 * (side + length) // 2
    for x in (left, right):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    draw.rectangle([left, y - r, right, y + r], fill=0)
    return np.asarray(canvas.resize((side, side), Image.Resampling.BOX))


@pytest.fixture(scope="module")
def site_untrained(untrained: Path) -> Iterator[str]:
    with serving(untrained) as url:
        yield url


def with_blank(blank: object) -> bytes:
    return read_json({"image": base64.b64encode(png(drawn_digit(SEVEN))).decode(), "blank": blank})


BLANK_ROWS = '"blank" must be a list of distinct row indices 0 to 27, got '


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"x", "text/plain", 415, "expected Content-Type application/json, got text/plain"),
        (b"{bad", "application/json", 400, "the body is not JSON (Expecting property name"),
        (b"[1]", "application/json", 400, 'expected a JSON object {"image": '),
        (read_json({"image": "@@@"}), "application/json", 400, '"image" is not valid base64'),
        (with_blank("3"), "application/json", 400, BLANK_ROWS + '"3"'),
        (with_blank([28]), "application/json", 400, BLANK_ROWS + "[28]"),
        (with_blank([-1]), "application/json", 400, BLANK_ROWS + "[-1]"),
        (with_blank([2, 2]), "application/json", 400, BLANK_ROWS + "[2, 2]"),
        (with_blank([True]), "application/json", 400, BLANK_ROWS + "[true]"),
        (with_blank([1.0]), "application/json", 400, BLANK_ROWS + "[1.0]"),
        (with_blank(list(range(40))), "application/json", 400, BLANK_ROWS + "[0, 1, 2"),
        (image_body(BROKEN_PNG), "application/json", 422, "the image: not a readable PNG"),
        (image_body(png(BLANK)), "application/json", 422, "no digit found: draw one"),
        (image_body(png(dash())), "application/json", 422, "no digit found: the marks are too"),
        (image_body(huge_png()), "application/json", 422, "the image: refused, far too large"),
    ],
    ids=[
        "type",
        "json",
        "object",
        "base64",
        "blank-not-a-list",
        "blank-row-28",
        "blank-row-minus-1",
        "blank-twice",
        "blank-bool",
        "blank-float",
        "blank-too-many",
        "broken",
        "blank-image",
        "dash",
        "huge",
    ],
)
def test_a_bad_request_is_a_4xx_with_one_line(
    site_untrained: str, body: bytes, content_type: str, status: int, message: str
) -> None:
    got, answer = post(site_untrained + "/read", body, content_type)
    assert (got, list(answer)) == (status, ["error"])
    assert answer["error"].startswith(message) and "\n" not in answer["error"]
    assert len(answer["error"]) < 200
    assert post(site_untrained + "/read", image_body(png(drawn_digit(SEVEN))))[0] == 200


def test_marks_too_small_for_a_digit_are_no_digit_but_a_small_digit_is_one(
    site_untrained: str,
) -> None:
    for mark in (dash(length=0), dash(length=6), dash(length=6, pen=30)):
        status, answer = post(site_untrained + "/read", image_body(png(mark)))
        assert status == 422 and "too small for a digit" in answer["error"], answer
    small = np.full((280, 280), 255, np.uint8)  # a seven 54 pixels tall on the pad: 19%
    small[105:175, 105:175] = 255 - drawn_digit(SEVEN, side=70)
    assert answer_of(site_untrained, png(small))["image"]  # read, not refused
    assert post(site_untrained + "/read", image_body(png(dash(length=40))))[0] == 200


def test_a_body_too_large_or_unmeasured_is_refused_unread(site_untrained: str) -> None:
    url = site_untrained
    head = "POST /read HTTP/1.0\r\nContent-Type: application/json\r\n"
    eight_mib = f"{head}Content-Length: {8 * 1024 * 1024}\r\n\r\n".encode()
    assert raw_request(url, eight_mib) == (
        413,
        {"error": "the image is about 6.3 MB; the server takes images up to 3.1 MB"},
    )
    just_over = f"{head}Content-Length: {serve.MAX_BODY + 1}\r\n\r\n".encode()
    assert raw_request(url, just_over)[0] == 413
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
    monkeypatch.setattr(serve, "MAX_IN_FLIGHT", 1)
    taken, freed = threading.Semaphore(0), threading.Semaphore(0)  # a count of each event
    serve_one = serve.Server.process_request_thread

    def counted(server: serve.Server, request: socket.socket, address: object) -> None:
        taken.release()  # its slot is held: process_request took it
        serve_one(server, request, address)  # gives the slot back before it returns
        freed.release()

    monkeypatch.setattr(serve.Server, "process_request_thread", counted)
    with serving(untrained) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)):  # silent, it holds the one slot
            assert taken.acquire(timeout=60)
            assert raw_request(url, b"GET / HTTP/1.0\r\n\r\n") == (
                503,
                {"error": "busy: too many requests at once, try again"},
            )
        assert freed.acquire(timeout=60)  # closed: its thread read the end, and ended
        monkeypatch.setattr(serve.Handler, "timeout", 0.5)
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(
                b"POST /read HTTP/1.0\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10\r\n\r\n{"
            )
            answer = b"".join(iter(lambda: slow.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.0 408 ")
        assert answer.endswith(b'{"error": "the body took over 0.5 s to arrive"}')
        assert freed.acquire(timeout=60)  # the timed-out thread gave its slot back
        assert post(url + "/read", b"{}")[0] == 400


ANSWER_KEYS = [
    *("digit", "probability", "runner_up", "runner_up_probability", "sure", "touches_edge"),
    *("probabilities", "image", "blanked", "rows", "settled", "influence", "why", "cell"),
    *("units", "signals", "signal_ranges"),
]


def test_the_page_s_answer_is_predict_s(
    untrained: Path, site_untrained: str, tmp_path: Path
) -> None:
    digit = tmp_path / "seven.png"
    digit.write_bytes(png(255 - drawn_digit(SEVEN)))  # black on white, as the pad draws
    answer = answer_of(site_untrained, digit.read_bytes())
    assert list(answer) == ANSWER_KEYS  # the page's contract: no more, no fewer
    assert np.array_equal(pixels_of(answer["image"]), as_mnist(255 - drawn_digit(SEVEN)))
    [(_, rows)] = answers_of(untrained, [digit], every_row=True)
    assert np.allclose(answer["rows"], rows, atol=1e-4) and len(answer["rows"]) == 28
    assert answer["probabilities"] == answer["rows"][-1]
    assert answer["digit"] == int(rows[-1].argmax())
    assert answer["probability"] == round(float(rows[-1].max()), 4)
    assert answer["blanked"] == [] and answer["touches_edge"] is False
    assert list(answer["signals"]) == list(answer["signal_ranges"]) == LSTM_SIGNALS


def test_the_runner_up_is_second_and_sure_follows_sure_at(
    site_untrained: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = answer_of(site_untrained, png(drawn_digit(SEVEN)))
    probabilities, probability = answer["probabilities"], answer["probability"]
    assert probability == max(probabilities) == probabilities[answer["digit"]]
    assert answer["runner_up"] != answer["digit"]
    assert answer["runner_up_probability"] == sorted(probabilities)[-2]
    assert probabilities[answer["runner_up"]] == sorted(probabilities)[-2]
    assert answer["sure"] is False and probability < serve.SURE_AT  # an untrained model
    monkeypatch.setattr(serve, "SURE_AT", probability)
    assert answer_of(site_untrained, png(drawn_digit(SEVEN)))["sure"] is True
    monkeypatch.setattr(serve, "SURE_AT", probability + 1e-4)
    assert answer_of(site_untrained, png(drawn_digit(SEVEN)))["sure"] is False


@pytest.mark.parametrize(
    ("guesses", "row"),
    [
        ([7] * 28, 1),
        ([1] * 16 + [7] * 12, 17),
        ([7] * 10 + [1] + [7] * 17, 12),
        ([7] * 27 + [3], 28),
    ],
)
def test_settled_is_the_row_from_which_the_guess_is_final_for_good(
    guesses: list[int], row: int
) -> None:
    rows = np.full((28, 10), 0.05)
    rows[np.arange(28), guesses] = 0.55
    assert serve.settled(rows) == row


def test_blanking_rows_zeroes_them_and_influence_is_each_row_blanked_too(
    site_untrained: str,
) -> None:
    image = png(drawn_digit(SEVEN))
    whole = answer_of(site_untrained, image)
    inked = np.flatnonzero(pixels_of(whole["image"]).any(axis=1))
    blank = [int(inked[-1]), int(inked[0]), int(inked[len(inked) // 2])]
    answer = answer_of(site_untrained, image, blank)
    expected = pixels_of(whole["image"]).copy()
    expected[blank] = 0
    assert np.array_equal(pixels_of(answer["image"]), expected)
    assert answer["blanked"] == sorted(blank)
    for before, sent in [(whole, []), (answer, blank)]:
        digit, influence = before["digit"], before["influence"]
        assert len(influence) == 28 and len(set(influence)) > 1  # rows move the answer
        for k in range(28):
            again = answer_of(site_untrained, image, sorted({*sent, k}))
            assert abs(influence[k] - again["probabilities"][digit]) <= 1e-4
    assert abs(answer["influence"][blank[0]] - answer["probability"]) <= 1e-4  # blank already


def test_touches_edge_says_when_the_ink_reaches_the_border(site_untrained: str) -> None:
    cut = [[(x - 120, y) for x, y in stroke] for stroke in SEVEN]  # its bar off the left
    assert answer_of(site_untrained, png(255 - drawn_digit(cut)))["touches_edge"] is True
    assert answer_of(site_untrained, png(255 - drawn_digit(SEVEN)))["touches_edge"] is False


def signals_agree(answer: dict, model: Path) -> None:
    """The signals sent are cell_signals' on the image sent, within one 1/255 step of each
    signal's range."""
    from rowlstm.model import load_classifier
    from rowlstm.row_by_row import cell_signals, first_recurrent

    layer = first_recurrent(load_classifier(model))
    exact = cell_signals(layer, to_sequences(pixels_of(answer["image"])[None])[0])
    assert list(answer["signals"]) == list(exact)
    for name, values in exact.items():
        lo, hi = answer["signal_ranges"][name]
        assert [lo, hi] == ([0, 1] if name.endswith("gate") else [-1, 1])
        sent = pixels_of(answer["signals"][name], values.shape) / 255 * (hi - lo) + lo
        assert np.abs(sent - np.clip(values, lo, hi)).max() <= (hi - lo) / 255


@pytest.mark.parametrize(
    ("changes", "signals"),
    [
        ({}, LSTM_SIGNALS),
        ({"cell": "gru"}, ["update gate", "reset gate", "h"]),
        ({"cell": "simple_rnn"}, ["h"]),
        ({"bidirectional": True}, LSTM_SIGNALS),
    ],
)
def test_each_cell_sends_its_own_signals(tmp_path: Path, changes: dict, signals: list) -> None:
    model = saved_model(tmp_path, scrambled=True, **changes)
    answer = serve.Reader(model).read(png(drawn_digit(SEVEN)), [14])
    assert list(answer["signals"]) == signals
    signals_agree(answer, model)
    assert answer["cell"] == {"gru": "GRU", "simple_rnn": "SimpleRNN"}.get(
        changes.get("cell"), "LSTM"
    )
    assert len(answer["influence"]) == 28
    if changes.get("bidirectional"):
        assert answer["rows"] is None and answer["settled"] is None
        assert answer["why"].startswith("No answer after each row: a bidirectional model")
    else:
        assert len(answer["rows"]) == 28 and answer["why"] is None
        assert 1 <= answer["settled"] <= 28


def prepared_test(folder: Path, count: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A small prepared test split, as prepare writes one, and evaluate's predictions.csv
    beside it: every digit read right but three."""
    images, labels = synthetic_digits(count, seed=3)
    save_split(folder, to_sequences(images), labels)
    predicted = labels.copy()
    predicted[[5, 20, 41]] = (labels[[5, 20, 41]] + 1) % 10
    lines = [f"{a},{p}" for a, p in zip(labels, predicted, strict=True)]
    (folder / "predictions.csv").write_text("\n".join(["actual,predicted", *lines]) + "\n")
    return images, labels


def test_examples_are_a_digit_of_each_class_then_those_read_wrong(tmp_path: Path) -> None:
    images, labels = prepared_test(tmp_path / "test")
    with serving(None, tmp_path / "test") as url:
        got = json.load(urllib.request.urlopen(url + "/examples"))
    firsts = [int(np.flatnonzero(labels == k)[0]) for k in range(10)]
    chosen = [*firsts, 5, 20, 41]
    assert got["why"] is None and len(got["examples"]) == 13
    for index, example in zip(chosen, got["examples"], strict=True):
        assert np.array_equal(pixels_of(example["image"]), images[index])
        assert example["label"] == labels[index]
    assert got["examples"][3]["note"] == "the first 3 of the test split"
    assert [e["read_as"] for e in got["examples"]][9:11] == [None, (labels[5] + 1) % 10]
    wrong = got["examples"][10]
    assert wrong["note"] == f"a {labels[5]} the committed model reads as {(labels[5] + 1) % 10}"


def test_examples_without_the_data_are_none_and_say_how_to_get_them(
    site_untrained: str, tmp_path: Path
) -> None:
    got = json.load(urllib.request.urlopen(site_untrained + "/examples"))
    assert got == {
        "examples": [],
        "why": f"no {NO_EXAMPLES}: `dvc repro prepare` makes the examples",
    }
    prepared_test(tmp_path)
    (tmp_path / "predictions.csv").write_text("actual,predicted\n1,1\n")  # another split's
    other = serve.examples(tmp_path, tmp_path / "predictions.csv")
    assert len(other["examples"]) == 10 and "`dvc repro evaluate`" in other["why"]


def test_serve_prints_its_url_and_a_taken_port_is_one_line(untrained: Path) -> None:
    with served(untrained) as url:
        assert urllib.request.urlopen(url).status == 200
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        taken = start(untrained, port)
        _, stderr = taken.communicate(timeout=60)
    assert taken.returncode == 1
    assert stderr == f"error: cannot listen on 127.0.0.1:{port} (Address already in use)\n"
