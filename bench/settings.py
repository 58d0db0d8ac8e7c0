"""What each of our runs trains with: params.yaml's train section, or that at the peer's settings.

"Ours at the peer's settings" must train what bench/peer.py trains, so that the only
difference the bench measures is our stage's machinery. Two ways it could silently drift
are closed, one here and one in bench/architecture.py:
- A new train option: every key of TrainParams must be named here, either in PEER_SETTINGS
  with the value that gives bench/peer.py's behaviour, or in FROM_PARAMS (set per run, or
  with no counterpart in the peer). A key named in neither stops the bench with one line
  naming it; starting from params.yaml alone would quietly take the new key's value there.
- A value that does not give the peer's model: before anything is timed, the bench builds
  both models and compares them (bench/architecture.py), and batch sizes too.
Nothing here imports TensorFlow: the bench's parent process checks the keys at once.
"""

import dataclasses

from rowlstm.errors import UserError
from rowlstm.params import TrainParams, load_params

PEER_EPOCHS = 15  # bench/peer.py takes its epochs as an argument: this is the bench's
PEER_SETTINGS = {
    "cell": "lstm",
    "units": 128,
    "layers": 1,
    "bidirectional": False,
    "dropout": 0.0,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "clipnorm": 0.0,
    "label_smoothing": 0.0,
    "ema_momentum": 0.0,
    "augment_shift": 0,
    "augment_rotate": 0.0,
    "augment_scale": 0.0,
    "batch_size": 128,
    "jit_compile": False,
    "distribution": "none",
    "patience": PEER_EPOCHS,  # the peer never stops early
}
# epochs: set per run (--quick); seed: the peer is not seeded, so params.yaml's is as good.
FROM_PARAMS = frozenset({"epochs", "seed"})


def train_params(kind: str, epochs: int) -> TrainParams:
    """params.yaml's train section ('ours') or that at the peer's settings ('ours-peer'),
    for `epochs` epochs."""
    train = load_params().train
    if kind == "ours-peer":
        train = at_peer_settings(train)
    return dataclasses.replace(train, epochs=epochs)


def at_peer_settings(train: TrainParams) -> TrainParams:
    """`train` with PEER_SETTINGS applied; UserError when the two name different keys."""
    keys = {spec.name for spec in dataclasses.fields(train)}
    undecided = sorted(keys - PEER_SETTINGS.keys() - FROM_PARAMS)
    if undecided:
        raise UserError(
            f"bench/settings.py: no peer setting for train.{', train.'.join(undecided)}: "
            "add the value that gives bench/peer.py's behaviour to PEER_SETTINGS"
        )
    stale = sorted(PEER_SETTINGS.keys() - keys)
    if stale:
        raise UserError(
            f"bench/settings.py: PEER_SETTINGS sets train.{', train.'.join(stale)}, "
            "which params.yaml no longer has: remove it"
        )
    return dataclasses.replace(train, **PEER_SETTINGS)
