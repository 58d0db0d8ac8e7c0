"""The matmul FLOPs of an LSTM -> Dense classifier's epoch, by formula, for the PyTorch peer.

bench/flops.py counts on the built Keras model, and the PyTorch peer's environment has no
Keras (requirements-torch.lock): this is the same count for its one architecture, in the
standard library alone. tests/test_bench.py checks that both give the Keras peer's figure.
"""

GATES = 4  # input, forget, cell and output: one matmul computes all four
FORWARD_AND_BACKWARD = 3.0  # two gradient matmuls per forward one, as bench/flops.py counts


def lstm_classifier_flops(steps: int, features: int, units: int, classes: int) -> float:
    """Matmul FLOPs of one training example, forward + backward: an LSTM over `steps` rows
    of `features` (input x kernel and state x recurrent kernel at each step), its last
    output into a dense layer of `classes`. Biases and gates are not counted."""
    recurrent = 2 * steps * GATES * units * (features + units)
    return FORWARD_AND_BACKWARD * (recurrent + 2 * units * classes)
