"""The drawing page: draw a digit, or drop an image on it, and watch the model read it.

    make serve                                  # http://127.0.0.1:8000/
    python -m tools.serve --port 8080 --model models/model.keras

The page shows the 28x28 image the model is given (predict's preparation, the same code:
rowlstm/images.py and rowlstm/digits.py), the ten probabilities after each row as the
model reads top to bottom (rowlstm/row_by_row.py's `stepwise`), the answer, and the first
recurrent layer's gates and state at each row (`cell_signals`). Everything it needs is
served from here: no CDN, no font, nothing from the network, and the page's
Content-Security-Policy forbids anything else.

The standard library's threaded HTTP server, made safe for a classroom on one machine: it
listens on loopback unless told otherwise; the model is loaded once and read under a lock;
at most MAX_IN_FLIGHT connections are served at once (the next get 503 at once); a body is
bounded by MAX_BODY, a slow one by TIMEOUT; anything wrong with a request is a 4xx with
one line of JSON, {"error": "..."}; and it writes nothing.
"""

import argparse
import base64
import binascii
import io
import json
import socket
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from rowlstm.digits import NoDigitError, as_mnist
from rowlstm.errors import UserError, cli
from rowlstm.images import decode_image
from rowlstm.paths import MODEL
from rowlstm.split_files import to_sequences

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
DECIMALS = 4  # of the probabilities and signals sent: the page draws them, nothing more


class Reader:
    """The model, loaded once, and one reading of a digit: what the page draws."""

    def __init__(self, model_path: Path) -> None:
        from rowlstm.model import load_classifier  # Keras: only once the arguments are good
        from rowlstm.row_by_row import NO_ROW_ANSWER, first_recurrent, reads_in_order, stepwise

        model = load_classifier(model_path)
        self.in_order = reads_in_order(model)
        self.model = stepwise(model) if self.in_order else model
        self.why = None if self.in_order else f"No answer after each row: {NO_ROW_ANSWER}."
        self.layer = first_recurrent(model)
        self.lock = threading.Lock()  # one forward pass at a time: Keras is not thread-safe
        self.model.predict_on_batch(np.zeros((1, *model.input_shape[1:]), np.float32))  # traced

    def read(self, image: bytes) -> dict[str, Any]:
        """The prepared image, the answers after each row (None for a bidirectional model,
        with `why`), the answer, and the first recurrent layer's signals (rows x units).
        A broken image, or one with no digit, is a UserError."""
        from rowlstm.row_by_row import cell_signals

        try:
            digit = as_mnist(decode_image(io.BytesIO(image), "the image"))
        except NoDigitError:
            raise UserError("no digit found: draw one, or drop an image of one") from None
        rows = to_sequences(digit[None])
        with self.lock:
            answers = np.asarray(self.model.predict_on_batch(rows))[0]
        final = answers[-1] if self.in_order else answers
        signals = cell_signals(self.layer, rows[0])
        return {
            "digit": int(final.argmax()),
            "probabilities": rounded(final),
            "image": digit.tolist(),
            "rows": rounded(answers) if self.in_order else None,
            "why": self.why,
            "cell": type(self.layer).__name__,
            "units": self.layer.cell.units,
            "signals": {name: rounded(values) for name, values in signals.items()},
        }


def rounded(values: np.ndarray) -> list:
    return np.round(values.astype(np.float64), DECIMALS).tolist()


class RequestError(Exception):
    """What was wrong with a request: its status and one line for the page."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def image_of(body: bytes) -> bytes:
    """The image bytes in a JSON body {"image": "<base64, or a data: URL>"}."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not JSON ({error})") from None
    if not isinstance(request, dict) or not isinstance(request.get("image"), str):
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            'expected a JSON object {"image": "<a PNG or JPEG, base64 or as a data: URL>"}',
        )
    encoded = request["image"]
    if encoded.startswith("data:"):
        encoded = encoded.partition(",")[2]
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(HTTPStatus.BAD_REQUEST, '"image" is not valid base64') from None


class Handler(BaseHTTPRequestHandler):
    """GET serves the page's three files; POST /read reads one image. One request per
    connection (HTTP/1.0), so an idle browser holds no thread."""

    server: "Server"
    server_version = "rowlstm-serve"
    timeout = TIMEOUT

    def do_GET(self) -> None:
        if self.path not in FILES:
            self.fail(HTTPStatus.NOT_FOUND, f"{self.path}: no such page (the page is /)")
            return
        name, content_type = FILES[self.path]
        self.send(HTTPStatus.OK, content_type, self.server.files[name])

    def do_POST(self) -> None:
        try:
            if self.path != "/read":
                raise RequestError(HTTPStatus.NOT_FOUND, f"{self.path}: POST an image to /read")
            answer = self.server.reader.read(image_of(self.body()))
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
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body is {int(length):,} bytes; at most {MAX_BODY:,}",
            )
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


class Server(ThreadingHTTPServer):
    """A thread per connection, at most MAX_IN_FLIGHT of them; the page's files read once."""

    daemon_threads = True
    request_queue_size = 2 * MAX_IN_FLIGHT  # connections the kernel holds until accepted

    reader: Reader  # set once the model is loaded, before the first request is served

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, Handler)
        self.files = {name: (PAGE / name).read_bytes() for name, _ in FILES.values()}
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
        server = Server((args.host, args.port))
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
