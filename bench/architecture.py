"""Checks that ours at the peer's settings builds the peer's model, before anything is timed.

bench/settings.py says which train params stand for bench/peer.py; this compares what they
build. Our model comes from rowlstm/model.py's build_model, the function the train stage
calls, so a new option that changes the model (a front end, a normalization) is seen here
whatever its params.yaml value. Compared: each layer's class, parameter count and whole
Keras config (units, activations, initializers, return_sequences...), the optimizer's
config, the loss, and the batch size. Names are left out: Keras numbers the peer's layers
and our stage names its own, which changes nothing. The check runs in a worker process, so
the bench's parent never imports TensorFlow.
"""

from typing import Any

import keras

from bench import peer
from bench.settings import train_params
from rowlstm.model import build_model


def peer_model_differences() -> list[str]:
    """How ours at the peer's settings differs from the peer (model, compile, batch size);
    empty when they are the same."""
    params = train_params("ours-peer", epochs=1)
    ours = build_model(params, steps_per_epoch=1)  # steps only size a schedule: none here
    found = differences(describe(peer.build_model()), describe(ours))
    if params.batch_size != peer.BATCH_SIZE:
        found.append(f"batch size is {peer.BATCH_SIZE} in the peer's, {params.batch_size} in ours")
    return found


def describe(model: keras.Model) -> list[dict[str, Any]]:
    """What decides a model's work and results: per layer its class, parameter count and
    config, then a 'compile' entry for optimizer and loss; flat dicts, names left out."""
    entries = [
        {
            "class": type(layer).__name__,
            "parameters": layer.count_params(),
            **_flat(layer.get_config()),
        }
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)  # a Sequential lists none
    ]
    optimizer = model.optimizer
    compiled = {"optimizer": type(optimizer).__name__, "loss": model.loss}
    entries.append({"class": "compile", **compiled, **_flat(optimizer.get_config(), "optimizer.")})
    return entries


def differences(peer_entries: list[dict], our_entries: list[dict]) -> list[str]:
    """Each setting that differs, as 'WHERE KEY is A in the peer's, B in ours'."""
    theirs = [entry["class"] for entry in peer_entries if entry["class"] != "compile"]
    mine = [entry["class"] for entry in our_entries if entry["class"] != "compile"]
    if theirs != mine:
        return [f"layers are {', '.join(theirs)} in the peer's, {', '.join(mine)} in ours"]
    found = []
    for index, (peer_entry, our_entry) in enumerate(zip(peer_entries, our_entries, strict=True)):
        kind = our_entry["class"]
        where = kind if kind == "compile" else f"layer {index + 1} ({kind})"
        for key in sorted(peer_entry.keys() | our_entry.keys()):
            a, b = peer_entry.get(key), our_entry.get(key)
            if a != b:
                found.append(f"{where} {key} is {a!r} in the peer's, {b!r} in ours")
    return found


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dicts as one level of dotted keys; layer and optimizer names dropped
    (a dtype policy's name, 'float32', stays: that one changes the work)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key == "name" and "dtype" not in prefix:
            continue
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat
