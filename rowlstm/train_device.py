"""Which device the train stage trains on, in one line (`make device` prints it alone).

With the CPU lock on a GPU machine, TensorFlow finds no CUDA libraries and trains on the
CPU without a word; this line says so, and names the switch (GPU=1, docs/scaling.md). The
train stage prints the same line before its first epoch.
"""

from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the driver sees


def device_line() -> str:
    """Where TensorFlow will train: the GPUs it sees, or the CPU and why."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = ", ".join(
            tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in gpus
        )
        cudnn = tf.sysconfig.get_build_info().get("cudnn_version", "?")
        return f"training on GPU: {names} (cuDNN {cudnn})"
    if NVIDIA_GPUS.is_dir() and any(NVIDIA_GPUS.iterdir()):
        return (
            "training on CPU, although this machine has an NVIDIA GPU: TensorFlow found no "
            "CUDA libraries (use the GPU lock: make repro GPU=1)"
        )
    return "training on CPU: TensorFlow sees no GPU"
