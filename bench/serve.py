"""`make bench-serve`: the drawing page's server under load, on this machine.

    python -m bench.serve --requests 1000 --in-flight 50 [--model models/model.keras]

Starts `python -m tools.serve` on a free port, as `make serve` does, and sends it MNIST test
digits (the first --digits of data/prepared/test) as PNGs, black on white as a user draws
them: first one at a time, which gives each digit's own answer, then --requests in all with
--in-flight of them open at once. Printed: answers per second, the 50th and 95th percentile
latency (from sending a request to its last byte), and how many were lost (no answer, or
not 200) or wrong (an answer other than the same digit's alone), and the answers' mean size.
The client runs on the same cores as the server, as a classroom's browsers would not: the
figures are a floor.
"""

import argparse
import base64
import io
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from rowlstm.errors import UserError, cli
from rowlstm.paths import MODEL, PREPARED
from rowlstm.split_files import load_split


def bodies(count: int, test: Path = PREPARED / "test") -> list[bytes]:
    """Requests for the first count test digits, each a black-on-white PNG."""
    if not (test / "x.npy").exists():
        raise UserError(f"no {test}: run `dvc repro prepare` first (make bench-serve does)")
    x, _ = load_split(test)
    requests = []
    for digit in x[:count]:
        buffer = io.BytesIO()
        Image.fromarray(255 - np.rint(digit * 255).astype(np.uint8)).save(buffer, format="PNG")
        encoded = base64.b64encode(buffer.getvalue()).decode()
        requests.append(json.dumps({"image": f"data:image/png;base64,{encoded}"}).encode())
    return requests


def ask(url: str, body: bytes) -> tuple[int | None, float, int]:
    """(the digit answered, or None if none came, seconds to the answer's last byte, the
    answer's bytes)."""
    start = time.perf_counter()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    answer = b""
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = response.read()
        digit = json.loads(answer)["digit"]
    except (OSError, ValueError, KeyError):
        digit = None
    return digit, time.perf_counter() - start, len(answer)


def measure(url: str, requests: list[bytes], total: int, in_flight: int) -> dict[str, float]:
    """Each request's answer alone, then total requests (cycling) with in_flight open."""
    alone = [ask(url, body)[0] for body in requests]
    order = [i % len(requests) for i in range(total)]
    start = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        results = list(pool.map(lambda i: ask(url, requests[i]), order))
    seconds = time.perf_counter() - start
    answers, latencies, sizes = zip(*results, strict=True)
    return {
        "answers_per_s": total / seconds,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p95_ms": 1000 * float(np.percentile(latencies, 95)),
        "lost": sum(digit is None for digit in answers),
        "wrong": sum(d is not None and d != alone[i] for d, i in zip(answers, order, strict=True)),
        "answer_kb": float(np.mean(sizes)) / 1000,
    }


@contextmanager
def server(model: Path) -> Iterator[str]:
    """`python -m tools.serve` on a free port; its /read URL once it says it is ready."""
    command = [sys.executable, "-m", "tools.serve", "--model", str(model), "--port", "0"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        found = re.search(r"http://\S+/", process.stdout.readline())
        if not found:
            raise UserError(f"tools.serve did not start (exit status {process.wait()})")
        yield found[0] + "read"
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="The drawing page's server under load.")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"default: {MODEL}")
    parser.add_argument("--requests", type=int, default=1000, help="default: 1000")
    parser.add_argument("--in-flight", type=int, default=50, help="default: 50")
    parser.add_argument("--digits", type=int, default=100, help="default: 100 test digits")
    args = parser.parse_args()
    requests = bodies(args.digits)
    with server(args.model) as url:
        result = measure(url, requests, args.requests, args.in_flight)
    print(
        f"{args.requests} requests, {args.in_flight} in flight, {args.digits} test digits: "
        f"{result['answers_per_s']:.0f} answers/s, latency p50 {result['p50_ms']:.0f} ms, "
        f"p95 {result['p95_ms']:.0f} ms; {result['lost']} lost, {result['wrong']} wrong; "
        f"answers of {result['answer_kb']:.0f} kB"
    )


if __name__ == "__main__":
    cli(main)
