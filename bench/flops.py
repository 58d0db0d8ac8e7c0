"""The matmul work of one training epoch, counted on the built Keras model itself.

GFLOP/s in the bench table is this count over the measured seconds, read against the
machine's matmul peak. It is read off the model's layers, not computed from params.yaml:
a formula over train params silently goes wrong when an option adds or changes a layer
(a Conv1D front end, say), while the model is what actually trains. A layer with weights
that this module cannot count stops the count with its name instead of being left out.

Counted: the matmuls, which the peak bounds. A recurrent layer multiplies its input by its
kernel and its state by its recurrent kernel at each of the sequence's steps (a
bidirectional wrapper runs two such layers); a Dense or convolution layer computes each
output value as one dot product. Backward costs two matmuls per forward one (gradients of
the inputs and of the weights), so an epoch is 3x the forward count. Not counted: biases,
gates and activations, dropout: elementwise work that the peak says nothing about.
"""

import math

import keras

FORWARD_AND_BACKWARD = 3.0
DOT_PRODUCT_LAYERS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)


def flops_per_epoch(model: keras.Model, samples: int) -> float:
    """Matmul FLOPs of one training epoch over `samples` inputs: forward + backward."""
    return FORWARD_AND_BACKWARD * samples * forward_flops(model)


def forward_flops(model: keras.Model) -> int:
    """Matmul FLOPs of the forward pass for one input, summed over the model's layers."""
    return sum(layer_flops(layer) for layer in model.layers)


def layer_flops(layer: keras.layers.Layer) -> int:
    """One layer's forward matmul FLOPs for one input; ValueError for a layer it cannot count."""
    if isinstance(layer, keras.Model):  # a model used as a layer
        return forward_flops(layer)
    if isinstance(layer, keras.layers.Bidirectional):
        steps = layer.input.shape[1]
        return _recurrent(layer.forward_layer, steps) + _recurrent(layer.backward_layer, steps)
    if isinstance(layer, keras.layers.RNN):
        return _recurrent(layer, layer.input.shape[1])
    if isinstance(layer, DOT_PRODUCT_LAYERS):
        return _dot_products(layer)
    if not layer.weights:  # Dropout, InputLayer, Reshape...: no matmul
        return 0
    raise ValueError(_uncounted(layer))


def _recurrent(layer: keras.layers.RNN, steps: int) -> int:
    """At each step: input x kernel and state x recurrent kernel (all gates at once)."""
    cell = layer.cell
    if not (hasattr(cell, "kernel") and hasattr(cell, "recurrent_kernel")):
        raise ValueError(_uncounted(layer))
    return 2 * steps * (_size(cell.kernel) + _size(cell.recurrent_kernel))


def _dot_products(layer: keras.layers.Layer) -> int:
    """Each output value is a dot product over the kernel's inputs (kernel size / outputs),
    whatever the number of positions (steps, pixels) or the data format."""
    terms = _size(layer.kernel) // layer.kernel.shape[-1]
    return 2 * terms * math.prod(layer.output.shape[1:])


def _size(weight: keras.Variable) -> int:
    return math.prod(weight.shape)


def _uncounted(layer: keras.layers.Layer) -> str:
    return (
        f"bench/flops.py cannot count the matmuls of layer {layer.name!r} "
        f"({type(layer).__name__}): add it there"
    )
