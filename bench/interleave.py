"""Turn-taking: the bench's worker processes run side by side but never at once.

This machine's speed drifts by up to 2x for minutes at a time, so runs measured one after
another are not comparable. Each worker instead gets the machine for one epoch, then hands
it to the next (round robin) and blocks on a read, using no CPU: a slow stretch slows all
of them alike. The protocol is two lines: the parent writes a line on the worker's stdin
to give it the machine, and the worker prints TURN when it is done with it. A worker is
finished when it exits; the last line it printed is its JSON result.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from typing import IO

TURN = "@@ bench: turn passed"
TURNS = "BENCH_TAKE_TURNS"  # set for the workers of interleaved()


def take_turn() -> None:
    """In a worker: block until the parent gives this worker the machine (a line on stdin).

    Outside interleaved() (a worker's task called on its own) there is no one to wait for.
    """
    if os.environ.get(TURNS) and not sys.stdin.readline():
        sys.exit("error: the bench parent went away")


def pass_turn() -> None:
    """In a worker: hand the machine to the next worker, then wait for the next turn."""
    if os.environ.get(TURNS):
        print(TURN, flush=True)
        take_turn()


def interleaved(commands: dict[str, list[str]]) -> dict[str, dict]:
    """Run the worker commands side by side, one at a time, in order; their JSON results.

    A worker that fails stops the bench with its output, and no worker outlives the call.
    """
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", TURNS: "1"}
    results: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        workers = {}
        for name, argv in commands.items():
            errors = stack.enter_context(tempfile.TemporaryFile("w+"))
            workers[name] = (_start(argv, env, errors, stack), errors)
        while len(results) < len(workers):
            for name, (worker, errors) in workers.items():
                if name not in results:
                    lines, finished = _one_turn(worker)
                    if finished:
                        results[name] = _result(name, worker, errors, lines)
    return results


def _start(
    argv: list[str], env: dict[str, str], errors: IO[str], stack: contextlib.ExitStack
) -> subprocess.Popen:
    """A started worker, its stderr into `errors` (read only if it fails), killed when
    `stack` closes."""
    worker = stack.enter_context(
        subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True, env=env
        )
    )
    stack.callback(worker.kill)  # runs first: a failed bench leaves no worker behind
    return worker


def _one_turn(worker: subprocess.Popen) -> tuple[list[str], bool]:
    """Give the worker the machine until it passes the turn or exits: its lines, and
    whether it exited."""
    with contextlib.suppress(BrokenPipeError):  # it died: its exit code says why
        os.write(worker.stdin.fileno(), b"go\n")  # unbuffered: nothing left to flush
    lines = []
    for line in iter(worker.stdout.readline, ""):
        if line.rstrip("\n") == TURN:
            return lines, False
        lines.append(line)
    return lines, True


def _result(name: str, worker: subprocess.Popen, errors: IO[str], lines: list[str]) -> dict:
    """A finished worker's JSON result, or the end of the bench with its output."""
    if worker.wait():
        errors.seek(0)
        sys.exit(f"error: bench task {name} failed:\n{''.join(lines)}{errors.read()}")
    return json.loads(lines[-1])
