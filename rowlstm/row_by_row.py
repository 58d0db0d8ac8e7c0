"""What the trained network knows after each row, and what its recurrent cell does.

The classifier only ever answers after the 28th row. The same trained weights can answer
after every row: `stepwise` copies the model with its last recurrent layer returning its
output at every step, and the classifier head (a Dense layer, which acts on the last axis)
applied to each step. No retraining, and the answer after row 28 is the model's own.

`cell_signals` recomputes the first recurrent layer from its weights with the cell's own
equations (Keras' gate order and bias layout), so the gates can be drawn while it reads;
tests/test_reading.py checks them against Keras' own outputs.
"""

import keras
import numpy as np

from rowlstm.errors import UserError

Array = np.ndarray
Signals = dict[str, np.ndarray]


NO_ROW_ANSWER = (
    "a bidirectional model has read every row at every step: it has no answer after row k"
)


def reads_in_order(model: keras.Model) -> bool:
    """Whether the model has an answer after each row: not when a layer reads both ways."""
    return not any(isinstance(layer, keras.layers.Bidirectional) for layer in model.layers)


def stepwise(model: keras.Model) -> keras.Model:
    """The trained model answering after every row: (N, rows, pixels) -> (N, rows, 10).

    Layers are shared with `model` except the last recurrent one, rebuilt to return every
    step and given the trained weights. A bidirectional layer has read every row, from
    both ends, at every step: it has no answer "after row k", so it is refused.
    """
    if not reads_in_order(model):
        raise UserError(NO_ROW_ANSWER)
    inputs = keras.Input(shape=model.input_shape[1:], name="rows")
    x = inputs
    for layer in model.layers[1:]:
        if isinstance(layer, keras.layers.RNN) and not layer.return_sequences:
            every_step = type(layer).from_config({**layer.get_config(), "return_sequences": True})
            x = every_step(x)
            every_step.set_weights(layer.get_weights())
        else:
            x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_stepwise")


def first_recurrent(model: keras.Model) -> keras.layers.RNN:
    """The recurrent layer that reads the rows themselves (of a bidirectional one, the
    layer that reads them top-down)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            return layer.forward_layer
        if isinstance(layer, keras.layers.RNN):
            return layer
    raise UserError(f"{model.name} has no recurrent layer")


def cell_signals(layer: keras.layers.RNN, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The cell's state and gates at each row, float32: of one image (rows, pixels), each
    (rows, units); of a batch (N, rows, pixels), each (N, rows, units), one matmul a row
    for the whole batch (the drawing page reads many images at once).

    LSTM: input, forget and output gates, cell state c and output h; GRU (reset_after):
    update and reset gates and h; SimpleRNN: h. Computed from the layer's weights.
    """
    weights = [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]
    cells = {keras.layers.LSTM: _lstm, keras.layers.GRU: _gru, keras.layers.SimpleRNN: _rnn}
    equations = next((f for cls, f in cells.items() if isinstance(layer, cls)), None)
    if equations is None:
        raise UserError(f"no cell equations for {type(layer).__name__}")
    sequences = rows.astype(np.float32)
    h = c = np.zeros((*sequences.shape[:-2], layer.cell.units), np.float32)
    signals: dict[str, list[np.ndarray]] = {}
    for step in range(sequences.shape[-2]):
        now = equations(sequences[..., step, :], h, c, *weights)
        h, c = now["h"], now.get("c", c)
        for name, value in now.items():
            signals.setdefault(name, []).append(value)
    return {name: np.stack(values, axis=-2) for name, values in signals.items()}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _lstm(x: Array, h: Array, c: Array, kernel: Array, recurrent: Array, bias: Array) -> Signals:
    z = x @ kernel + h @ recurrent + bias
    i, f, g, o = np.split(z, 4, axis=-1)  # Keras' order: input, forget, cell candidate, output
    i, f, o = _sigmoid(i), _sigmoid(f), _sigmoid(o)
    c = f * c + i * np.tanh(g)
    return {"input gate": i, "forget gate": f, "output gate": o, "c": c, "h": o * np.tanh(c)}


def _gru(x: Array, h: Array, c: Array, kernel: Array, recurrent: Array, bias: Array) -> Signals:
    # reset_after=True (Keras' default): separate input and recurrent biases, and the reset
    # gate scales the recurrent candidate after its matmul.
    xz, xr, xh = np.split(x @ kernel + bias[0], 3, axis=-1)
    hz, hr, hh = np.split(h @ recurrent + bias[1], 3, axis=-1)
    update, reset = _sigmoid(xz + hz), _sigmoid(xr + hr)
    candidate = np.tanh(xh + reset * hh)
    return {"update gate": update, "reset gate": reset, "h": update * h + (1 - update) * candidate}


def _rnn(x: Array, h: Array, c: Array, kernel: Array, recurrent: Array, bias: Array) -> Signals:
    return {"h": np.tanh(x @ kernel + h @ recurrent + bias)}
