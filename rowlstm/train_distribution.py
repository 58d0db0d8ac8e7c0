"""How the train stage spreads over devices and machines (params: train.distribution).

- `none`: the default strategy, one device (the CPU, or the first GPU).
- `mirrored`: tf.distribute.MirroredStrategy over every local GPU, or over every logical CPU
  device when there is no GPU. One process; each batch is split across the replicas and
  the gradients are summed before each update, so train.batch_size stays the global batch.
- `multi_worker`: tf.distribute.MultiWorkerMirroredStrategy. The cluster and this process's
  place in it come from the TF_CONFIG environment variable, as every TensorFlow launcher
  (Kubernetes' TFJob, Vertex AI, SageMaker, a hand-written script) sets it. Every worker
  runs the same stage on the same prepared data; the chief alone writes the model and logs.

The TF_CONFIG checks are plain Python so that a bad cluster description fails in a line,
before TensorFlow is imported.
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rowlstm.errors import UserError, one_line

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class Task:
    """This process's place in the cluster: ("worker", 0) and chief when there is none.

    cluster_size counts every task that trains, the chief included, not only the "worker"s.
    """

    kind: str = "worker"
    index: int = 0
    cluster_size: int = 1
    chief: bool = True


def task(distribution: str, environ: Mapping[str, str] = os.environ) -> Task:
    """This process's task for train.distribution, read from TF_CONFIG for multi_worker.

    The chief is the task of type "chief", or worker 0 when the cluster names no chief
    (TensorFlow's own convention).
    """
    if distribution != "multi_worker":
        return Task()
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise UserError(
            "train.distribution is multi_worker but TF_CONFIG is not set: set it on every "
            'worker, e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}} (see docs/scaling.md)'
        )
    try:
        config = json.loads(raw)
        cluster, me = config["cluster"], config["task"]
        kind, index = me["type"], int(me["index"])
        addresses = cluster[kind]
        cluster_size = sum(len(cluster[job]) for job in ("chief", "worker") if job in cluster)
    except (ValueError, TypeError, KeyError) as error:
        raise UserError(
            f"TF_CONFIG is not a valid cluster description ({type(error).__name__}: "
            f"{one_line(error)}): it needs cluster.<type> address lists and task.type/index"
        ) from None
    if kind not in ("chief", "worker"):
        raise UserError(f"TF_CONFIG task.type must be chief or worker, got {kind!r}")
    if not 0 <= index < len(addresses):
        raise UserError(
            f"TF_CONFIG task.index {index} is out of range: cluster.{kind} has "
            f"{len(addresses)} address(es)"
        )
    chief = kind == "chief" or ("chief" not in cluster and index == 0)
    return Task(kind, index, cluster_size, chief)


def strategy(distribution: str) -> "tf.distribute.Strategy":
    """The tf.distribute strategy for train.distribution; build and compile inside its scope."""
    import tensorflow as tf

    if distribution == "none":
        return tf.distribute.get_strategy()
    if distribution == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return _multi_worker()


def _multi_worker() -> "tf.distribute.Strategy":
    """MultiWorkerMirroredStrategy, mended for Keras 3's model.fit.

    Keras (3.15; keras-team/keras#20585) calls the strategy's reduce on an (x, y) batch and
    on scalar metrics with axis=0; MultiWorkerMirroredStrategy accepts neither (nor uint8
    labels), while MirroredStrategy does. This reduces each value of a nest on its own,
    drops the axis for scalars (what MirroredStrategy computes) and passes the batch's
    labels through, since Keras reduces that first batch only to learn its shapes.
    """
    import tensorflow as tf

    reducible = (tf.bfloat16, tf.float16, tf.float32, tf.float64, tf.int32, tf.int64)

    class MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op: object, value: object, axis: int | None) -> object:
            def one(part: object) -> object:
                local = self.experimental_local_results(part)[0]
                if local.dtype not in reducible:
                    return local  # uint8 labels: Keras only wants their shape here
                rank = local.shape.rank
                return super(MultiWorker, self).reduce(reduce_op, part, axis if rank else None)

            return tf.nest.map_structure(one, value)

    return MultiWorker()
