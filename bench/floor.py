"""The floor of an epoch: the built model's own recurrent matmul chain, timed alone.

A recurrent layer cannot train faster than the matmuls it must chain. At each step of the
sequence it multiplies the input by its kernel and the state by its recurrent kernel; the
gradient costs two more matmuls per weight (the input's or state's gradient, and the
weight's); and no step starts before the previous step's state is known. floor_seconds
runs exactly those matmuls, shapes read off the built model, at the run's batch size,
chained through the state as the layer chains them and in a tf.while_loop as Keras runs
them, and nothing else: no gates, no activations, no optimizer, no data pipeline. Its
time, scaled to an epoch, is what the bench reads each run's epoch against ("x floor").

Left out: the matmuls done once per batch (the Dense head), under 0.1% of LSTM(128)'s.
Like the peak (bench/peak.py), the floor is the best of several timings.
"""

import math
import time

import keras
import tensorflow as tf

ROUNDS = 3
BATCHES = 8  # timed per round; one batch of LSTM(128) at 256 is about 3.4 GFLOP


def floor_seconds(model: keras.Model, batch_size: int, samples: int) -> float:
    """Seconds per epoch of `samples` inputs for the model's recurrent matmul chains alone."""
    per_batch = sum(_chain_seconds(batch_size, *chain) for chain in recurrent_chains(model))
    return per_batch * samples / batch_size


def recurrent_chains(model: keras.Model) -> list[tuple[int, tuple, tuple]]:
    """(steps, kernel shape, recurrent kernel shape) of each recurrent layer, in order; a
    bidirectional layer has two."""
    chains = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            chains += recurrent_chains(layer)
        elif isinstance(layer, keras.layers.Bidirectional):
            steps = layer.input.shape[1]
            chains += [_chain(part, steps) for part in (layer.forward_layer, layer.backward_layer)]
        elif isinstance(layer, keras.layers.RNN):
            chains.append(_chain(layer, layer.input.shape[1]))
    return chains


def chain(
    inputs: tf.Tensor, state: tf.Tensor, kernel: tf.Tensor, recurrent: tf.Tensor
) -> tuple[tf.Tensor, ...]:
    """The six matmuls of each step over `inputs` (steps x batch x features), chained
    through the state: z = x.W + h.U forward; x'.z and h'.z (the weights' gradients,
    summed over the steps), z.W' (the input's gradient) and z.U' (the state's gradient,
    which the next step multiplies, as backpropagation through time chains it).

    Returns the last state, the summed weight gradients and the last input gradient, so
    that no matmul is dead code."""
    steps = tf.shape(inputs)[0]

    def step(t, h, d_kernel, d_recurrent, d_input):
        x = inputs[t]
        z = tf.matmul(x, kernel) + tf.matmul(h, recurrent)
        d_kernel += tf.matmul(x, z, transpose_a=True)
        d_recurrent += tf.matmul(h, z, transpose_a=True)
        d_input = tf.matmul(z, kernel, transpose_b=True)
        return t + 1, tf.matmul(z, recurrent, transpose_b=True), d_kernel, d_recurrent, d_input

    start = (tf.constant(0), state, tf.zeros_like(kernel), tf.zeros_like(recurrent), inputs[0])
    return tuple(tf.while_loop(lambda t, *_: t < steps, step, start)[1:])


def _chain(layer: keras.layers.RNN, steps: int) -> tuple[int, tuple, tuple]:
    cell = layer.cell
    return steps, tuple(cell.kernel.shape), tuple(cell.recurrent_kernel.shape)


def _chain_seconds(batch_size: int, steps: int, kernel: tuple, recurrent: tuple) -> float:
    """Best seconds per batch of chain() at these shapes."""
    # Scaled so that a step neither grows nor shrinks the state: no overflow, no denormals.
    scale = math.prod(recurrent) ** -0.25
    arguments = (
        tf.random.uniform((steps, batch_size, kernel[0])),
        tf.random.normal((batch_size, recurrent[0])),
        tf.random.normal(kernel, stddev=scale),
        tf.random.normal(recurrent, stddev=scale),
    )
    timed = tf.function(chain)
    timed(*arguments)[0].numpy()  # traced and warmed up
    best = math.inf
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(BATCHES):
            result = timed(*arguments)
        result[0].numpy()
        best = min(best, (time.perf_counter() - start) / BATCHES)
    return best
