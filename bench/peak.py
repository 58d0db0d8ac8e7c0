"""The machine's matmul peak, measured with TensorFlow itself: the ceiling GFLOP/s is read against.

TensorFlow, not numpy: these machines set OPENBLAS_CORETYPE, which caps numpy's sgemm near
a third of what TensorFlow's own kernels reach, and TensorFlow is what trains. Measured in
a fresh worker process with the machine to itself (bench/run.py), before and after the
trainings, because the peak drifts with the machine's load.
"""

import time


def peak_gflops(size: int) -> dict[str, float]:
    """Best of 10 timed size x size matmuls through TensorFlow, float32 and bfloat16.

    4096 is the machine's peak; --quick takes 1024, a smoke test of the machinery (at 4096
    the measurement alone takes 50 s on a CPU without native bfloat16)."""
    import tensorflow as tf

    result = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.cast(tf.random.normal((size, size), dtype=tf.float32), dtype)
        tf.linalg.matmul(a, a).numpy()
        best = float("inf")
        for _ in range(10):
            start = time.perf_counter()
            tf.linalg.matmul(a, a).numpy()
            best = min(best, time.perf_counter() - start)
        result[dtype.name] = 2 * size**3 / best / 1e9
    return result
