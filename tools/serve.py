"""The drawing page: draw a digit, or drop an image on it, and watch the model read it.

    make serve                                  # http://127.0.0.1:8000/
    python -m tools.serve --port 8080 --model models/model.keras

The page shows the 28x28 image the model is given (predict's preparation, the same code:
rowlstm/images.py and rowlstm/digits.py), the ten probabilities after each row as the
model reads top to bottom (rowlstm/row_by_row.py's `stepwise`), the answer with its
runner-up and whether it is sure, how much each row moved it, and the first recurrent
layer's gates and state at each row. POST /read may name rows to blank ("what if the
model had not seen them?"); GET /examples gives test digits to try, among them the ones
the committed model reads wrong. Everything the page needs is served from here: no CDN,
no font, nothing from the network, and the page's Content-Security-Policy forbids
anything else.

The standard library's threaded HTTP server, made safe for a classroom on one machine: it
listens on loopback unless told otherwise; the model is loaded once and read by one
thread, which takes every request waiting and reads them in one forward pass (each with
its 28 blanked variants); at most MAX_IN_FLIGHT connections are served at once (the next
get 503 at once); a body is bounded by MAX_BODY, a slow one by TIMEOUT; anything wrong
with a request is a 4xx with one line of JSON, {"error": "..."}; and it writes nothing.
"""

import argparse
import base64
import binascii
import csv
import io
import json
import queue
import socket
import sys
import threading
import traceback
from collections.abc import Sequence
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rowlstm.digits import NoDigitError, digit_and_ink, ink_size, touches_edge
from rowlstm.errors import UserError, cli
from rowlstm.idx import IMAGE_SIDE
from rowlstm.images import decode_image
from rowlstm.paths import MODEL, EvaluatePaths
from rowlstm.split_files import load_split, to_sequences

PAGE = Path(__file__).with_name("page")
FILES = {  # everything the page loads: path -> (file, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
}
POLICY = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
MAX_BODY = 4 * 1024 * 1024  # bytes: a canvas is ~10 KB of base64, a phone photo ~3 MB
MAX_IN_FLIGHT = 64  # connections served at once, each a thread
TIMEOUT = 10.0  # seconds a client may take to send its request
DECIMALS = 4  # of the probabilities sent: the page draws them, nothing more
# An answer below this probability is "not sure". Chosen on the validation split (never the
# test split): the committed model's 5,000 answers there (35 wrong), grouped by their
# probability, are right 79% below 0.9 (48 of 61), 90% in [0.9, 0.99) (98 of 109) and
# 99.77% at 0.99 or above (4,819 of 4,830). So below 0.99 an answer is wrong about 1 time
# in 7 (3.4% of the answers, holding 24 of the 35 errors), above it 1 in 440; at 0.9,
# "sure" would still cover the 1-in-10 band. The same digits drawn in the five styles of
# bench/user_digits.py, with the model before (20 epochs, no weights' average): 2.7%
# below 0.99, right 84% there and 99.71% above.
SURE_AT = 0.99
# Marks whose bounding box (its longer side) is under this share of the image's shorter
# side are no digit (rowlstm/digits.py's ink_size). Measured: every MNIST digit (train, val,
# test) is at least 0.46 (median 0.71); bench/user_digits.py's styles, on the val digits and
# on its own 1,000 test digits, at least 0.197 (a 60-pixel digit on a 400x300 page);
# tests/helpers.py's drawn digits at least 0.74. On the 280-pixel pad a dot is 0.075 and a
# 6-pixel dash 0.096 with the 20 px pen, 0.13 with a 30 px one (the page's widest pen).
MIN_INK = 0.15
VARIANTS = 1 + IMAGE_SIDE  # each image is read as it is and with each row blanked
MAX_WRONG = 6  # examples the committed model reads wrong, after one digit of each class
Array = np.ndarray
Signals = dict[str, np.ndarray]


class Reading(NamedTuple):
    """What the forward pass gives for one digit."""

    answers: Array  # (28, 10): after each row; (10,) for a bidirectional model
    influence: Array  # (28, 10): the final answer with each row blanked too
    signals: Signals  # the first recurrent layer's, (28, units) each


class Reader:
    """The model, loaded once and read by one thread, and one reading of a digit: what the
    page draws."""

    def __init__(self, model_path: Path) -> None:
        from rowlstm.model import load_classifier  # Keras: only once the arguments are good
        from rowlstm.row_by_row import NO_ROW_ANSWER, first_recurrent, reads_in_order, stepwise

        model = load_classifier(model_path)
        self.in_order = reads_in_order(model)
        self.model = stepwise(model) if self.in_order else model
        self.why = None if self.in_order else f"No answer after each row: {NO_ROW_ANSWER}."
        self.layer = first_recurrent(model)
        self.cell, self.units = type(self.layer).__name__, self.layer.cell.units
        for count in (1, 2):  # traced for one batch size, then (retraced) for any
            self.model.predict_on_batch(
                np.zeros((count * VARIANTS, IMAGE_SIDE, IMAGE_SIDE), np.float32)
            )
        self.waiting: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self.read_waiting, daemon=True, name="reader").start()

    def read(self, image: bytes, blank: Sequence[int] = ()) -> dict[str, Any]:
        """The page's answer (`answer`) for one image with these rows of the prepared digit
        blanked. A broken image, or one with no digit, is a UserError."""
        digit, touches = prepared(image)
        digit[list(blank)] = 0
        future: Future = Future()
        self.waiting.put((digit, future))
        return self.answer(digit, sorted(blank), touches, future.result())

    def read_waiting(self) -> None:
        """The reading thread: Keras is not thread-safe, and one forward pass over every
        request waiting costs far less than one each (the LSTM's matmuls fill the cores)."""
        while True:
            jobs = [self.waiting.get()]
            while not self.waiting.empty():
                jobs.append(self.waiting.get())
            try:
                readings = self.read_batch(np.stack([digit for digit, _ in jobs]))
            except Exception as error:  # a bug: each request answers 500, the thread lives
                for _, future in jobs:
                    future.set_exception(error)
            else:
                for (_, future), reading in zip(jobs, readings, strict=True):
                    future.set_result(reading)

    def read_batch(self, digits: np.ndarray) -> list[Reading]:
        """Each digit's Reading: the digit and its 28 variants (one row blanked each) read
        in the same forward pass."""
        from rowlstm.row_by_row import cell_signals

        variants = np.repeat(digits[:, None], VARIANTS, axis=1)
        variants[:, np.arange(1, VARIANTS), np.arange(IMAGE_SIDE)] = 0  # variant k+1: row k
        sequences = to_sequences(variants.reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
        out = np.asarray(self.model.predict_on_batch(sequences))
        out = out.reshape(len(digits), VARIANTS, *out.shape[1:])
        finals = out[:, 1:, -1] if self.in_order else out[:, 1:]
        signals = cell_signals(self.layer, sequences[::VARIANTS])
        return [
            Reading(out[i, 0], finals[i], {name: values[i] for name, values in signals.items()})
            for i in range(len(digits))
        ]

    def answer(
        self, digit: np.ndarray, blank: list[int], touches: bool, reading: Reading
    ) -> dict[str, Any]:
        """The JSON the page reads (docs/drawing.md). The image and the signals go as
        base64 of uint8: as JSON numbers the signals alone cost more to encode than the
        model to run. `influence` is the answer's probability with each row blanked too;
        `settled`, the row from which the guess after each row is the answer for good."""
        answers, signals = reading.answers, reading.signals
        final = answers[-1] if self.in_order else answers
        first, second = (int(i) for i in np.argsort(-final, kind="stable")[:2])
        probability = round(float(final[first]), DECIMALS)
        return {
            "digit": first,
            "probability": probability,
            "runner_up": second,
            "runner_up_probability": round(float(final[second]), DECIMALS),
            "sure": probability >= SURE_AT,
            "touches_edge": touches,
            "probabilities": rounded(final),
            "image": encoded(digit),
            "blanked": blank,
            "rows": rounded(answers) if self.in_order else None,
            "settled": settled(answers) if self.in_order else None,
            "influence": rounded(reading.influence[:, first]),
            "why": self.why,
            "cell": self.cell,
            "units": self.units,
            "signals": {name: quantized(name, values) for name, values in signals.items()},
            "signal_ranges": {name: list(signal_range(name)) for name in signals},
        }


def prepared(image: bytes) -> tuple[np.ndarray, bool]:
    """The 28x28 digit the model is given, and whether its ink touches the image's edge.
    Marks too small to be a digit are refused here, not in predict: a dot or a dash on the
    pad would otherwise be scaled up to a digit's size and read with confidence."""
    try:
        digit, ink = digit_and_ink(decode_image(io.BytesIO(image), "the image"))
    except NoDigitError:
        raise UserError("no digit found: draw one, or drop an image of one") from None
    size = ink_size(ink)
    if size < MIN_INK:
        raise UserError(
            f"no digit found: the marks are too small for a digit ({size:.0%} of the "
            f"image's side; a digit takes at least {MIN_INK:.0%}): draw it larger, or crop "
            "the image closer to it"
        )
    return digit, touches_edge(ink)


def signal_range(name: str) -> tuple[float, float]:
    """What a signal's 256 levels span: a gate is in [0, 1], a state (clipped) in [-1, 1]."""
    return (0.0, 1.0) if name.endswith("gate") else (-1.0, 1.0)


def quantized(name: str, values: np.ndarray) -> str:
    """base64 of uint8 rows x units, row-major: value v as round((v - lo) / (hi - lo) * 255)
    within signal_range. A step of 1/255 of the range is finer than the page's colours."""
    lo, hi = signal_range(name)
    levels = np.rint((np.clip(values, lo, hi) - lo) / (hi - lo) * 255)
    return encoded(levels.astype(np.uint8))


def encoded(values: np.ndarray) -> str:
    """base64 (standard alphabet) of uint8 values, row-major."""
    return base64.b64encode(values.tobytes()).decode()


def settled(answers: np.ndarray) -> int:
    """The 1-based row from which the guess after each row is the final one for good."""
    guesses = answers.argmax(axis=1)
    changed = np.flatnonzero(guesses != guesses[-1])
    return int(changed[-1]) + 2 if changed.size else 1


def rounded(values: np.ndarray) -> list:
    return np.round(values.astype(np.float64), DECIMALS).tolist()


class RequestError(Exception):
    """What was wrong with a request: its status and one line for the page."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def request_of(body: bytes) -> tuple[bytes, list[int]]:
    """The image bytes and the rows to blank in a JSON body
    {"image": "<base64, or a data: URL>", "blank": [row, ...]}."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not JSON ({error})") from None
    if not isinstance(request, dict) or not isinstance(request.get("image"), str):
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            'expected a JSON object {"image": "<a PNG or JPEG, base64 or as a data: URL>"}',
        )
    text = request["image"]
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        image = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(HTTPStatus.BAD_REQUEST, '"image" is not valid base64') from None
    return image, rows_to_blank(request.get("blank", []))


def rows_to_blank(blank: object) -> list[int]:
    """The request's "blank", checked: distinct row indices 0..27 (true and false are no
    rows, though Python counts them as ints), sorted."""
    rows = blank if isinstance(blank, list) else [None]
    indices = all(type(row) is int and 0 <= row < IMAGE_SIDE for row in rows)
    if not indices or len(set(rows)) < len(rows):
        shown = json.dumps(blank)
        shown = shown if len(shown) <= 40 else shown[:39] + "\u2026"
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f'"blank" must be a list of distinct row indices 0 to {IMAGE_SIDE - 1}, got {shown}',
        )
    return sorted(rows)


class Handler(BaseHTTPRequestHandler):
    """GET serves the page's three files and its examples; POST /read reads one image. One
    request per connection (HTTP/1.0), so an idle browser holds no thread."""

    server: "Server"
    server_version = "rowlstm-serve"
    timeout = TIMEOUT

    def do_GET(self) -> None:
        if self.path == "/examples":
            self.send(HTTPStatus.OK, "application/json", self.server.examples)
            return
        if self.path not in FILES:
            self.fail(HTTPStatus.NOT_FOUND, f"{self.path}: no such page (the page is /)")
            return
        name, content_type = FILES[self.path]
        self.send(HTTPStatus.OK, content_type, self.server.files[name])

    def do_POST(self) -> None:
        try:
            if self.path != "/read":
                raise RequestError(HTTPStatus.NOT_FOUND, f"{self.path}: POST an image to /read")
            answer = self.server.reader.read(*request_of(self.body()))
        except RequestError as error:
            self.fail(error.status, str(error))
        except UserError as error:
            self.fail(HTTPStatus.UNPROCESSABLE_ENTITY, str(error))
        except TimeoutError:
            self.fail(
                HTTPStatus.REQUEST_TIMEOUT, f"the body took over {self.timeout:g} s to arrive"
            )
        except Exception as error:  # a bug: the server stays up, the operator sees it
            traceback.print_exc()
            self.fail(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {error!r}")
        else:
            self.send(HTTPStatus.OK, "application/json", json.dumps(answer).encode())

    def body(self) -> bytes:
        """The request's JSON body, checked before it is read: type, then length."""
        content_type = self.headers.get_content_type()
        if content_type != "application/json":
            raise RequestError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"expected Content-Type application/json, got {content_type}",
            )
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "the request has no Content-Length")
        if int(length) > MAX_BODY:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large(int(length)))
        body = self.rfile.read(int(length))
        if len(body) < int(length):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body ended before its Content-Length")
        return body

    def do_PUT(self) -> None:
        self.fail(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command}: only GET and POST")

    do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_PUT  # noqa: N815

    def fail(self, status: HTTPStatus, message: str) -> None:
        self.send(status, "application/json", json.dumps({"error": message}).encode())

    def send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def too_large(length: int) -> str:
    """The 413's line, in the image's terms: base64 sends 4 bytes for every 3 of the image."""
    image, most = length * 3 / 4 / 1e6, MAX_BODY * 3 / 4 / 1e6
    return f"the image is about {image:.1f} MB; the server takes images up to {most:.1f} MB"


class Server(ThreadingHTTPServer):
    """A thread per connection, at most MAX_IN_FLIGHT of them; the page's files and its
    examples read once."""

    daemon_threads = True
    request_queue_size = 2 * MAX_IN_FLIGHT  # connections the kernel holds until accepted

    reader: Reader  # set once the model is loaded, before the first request is served

    def __init__(self, address: tuple[str, int], examples: dict[str, Any]) -> None:
        super().__init__(address, Handler)
        self.files = {name: (PAGE / name).read_bytes() for name, _ in FILES.values()}
        self.examples = json.dumps(examples).encode()
        self.slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            busy = json.dumps({"error": "busy: too many requests at once, try again"})
            request.sendall(
                b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Retry-After: 1\r\nContent-Length: %d\r\n\r\n%s" % (len(busy), busy.encode())
            )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def examples(test: Path, predictions: Path) -> dict[str, Any]:
    """GET /examples' answer: the first test digit of each class, then up to MAX_WRONG that
    the committed model reads wrong (evaluate's predictions of the same split), each
    {"image", "label", "note", "read_as"}; "why" says what is missing. Without the data (a
    clone that has not run prepare) there are none, and the page still works."""
    if not (test / "x.npy").exists():
        return {"examples": [], "why": f"no {test}: `dvc repro prepare` makes the examples"}
    try:
        x, y = load_split(test)
    except UserError as error:
        return {"examples": [], "why": str(error)}
    firsts = [int(np.flatnonzero(y == label)[0]) for label in sorted(set(y.tolist()))]
    chosen = [(i, f"the first {y[i]} of the test split", None) for i in firsts]
    wrong = misread(predictions, y)
    if wrong is None:
        why = f"{predictions} is missing or of another test split: `dvc repro evaluate`"
    else:
        why = None
        chosen += [
            (i, f"{article(y[i])} {y[i]} the committed model reads as {p}", p) for i, p in wrong
        ]
    gallery = [
        {
            "image": encoded(np.rint(x[i] * 255).astype(np.uint8)),
            "label": int(y[i]),
            "note": note,
            "read_as": read_as,  # what the committed model answers, where it is wrong
        }
        for i, note, read_as in chosen
    ]
    return {"examples": gallery, "why": why}


def article(digit: int) -> str:
    return "an" if digit == 8 else "a"


def misread(predictions: Path, labels: np.ndarray) -> list[tuple[int, int]] | None:
    """(index, answer) of the first MAX_WRONG test digits read wrong, from evaluate's
    predictions.csv (actual,predicted, one row per test digit in order); None unless the
    file is there and its actual labels are the split's."""
    try:
        with predictions.open(newline="") as file:
            rows = [(int(r["actual"]), int(r["predicted"])) for r in csv.DictReader(file)]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    if [actual for actual, _ in rows] != labels.tolist():
        return None
    return [(i, p) for i, (actual, p) in enumerate(rows) if p != actual][:MAX_WRONG]


def main() -> None:
    parser = argparse.ArgumentParser(description="Draw a digit and watch the model read it.")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"default: {MODEL}")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000; 0 picks a free one")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="default: 127.0.0.1, this machine only; 0.0.0.0 serves the whole network",
    )
    args = parser.parse_args()
    if not args.model.exists():
        raise UserError(f"{args.model}: not found (run `make repro`, or `dvc pull` it)")
    try:  # the port before the model: a taken port is said at once, before Keras loads
        paths = EvaluatePaths()  # what evaluate read and wrote: the examples' sources
        server = Server((args.host, args.port), examples(paths.test, paths.predictions))
    except OSError as error:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({error.strerror})") from None
    with server:
        server.reader = Reader(args.model)
        host, port = server.server_address[:2]
        print(f"Serving the drawing page at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)


if __name__ == "__main__":
    cli(main)
