"""How one training spreads over devices and machines: which `tf.distribute` strategy this process trains
under, what precision, what batch per replica and in all, and which worker it is.

- One process, at most one GPU: no strategy (the path every CPU run takes, bit for bit as before).
- Several GPUs in one process: `MirroredStrategy` over all of them.
- Several workers (`TF_CONFIG` names more than one): `MultiWorkerMirroredStrategy`, each worker reading its
  own share of the TFRecord files; worker 0 is the chief, the only one that writes the bundle. `TF_CONFIG`
  comes from SageMaker's `resourceconfig.json` (`sagemaker_tf_config`) or from Metaflow's `@parallel` nodes
  (`parallel_tf_config`); worker i listens on `train.distribution.port + i`.

`train.batch_size` is the batch of one replica; the global batch is that times the replicas in sync.
"""
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from emoji_reco.errors import ModelError
from emoji_reco.settings.sections import DistributionSettings, TrainSettings


@dataclass(frozen=True)
class Plan:
    strategy: object | None  # None: no tf.distribute at all
    kind: str  # the strategy's name, or "one device"
    workers: int
    worker_index: int
    replicas: int
    devices: list
    precision: str
    per_replica_batch: int

    @property
    def global_batch(self) -> int:
        return self.per_replica_batch * self.replicas

    @property
    def chief(self) -> bool:
        return self.worker_index == 0

    def describe(self) -> dict:
        """What the run's metadata and train card say of it."""
        return {"devices": self.devices, "workers": self.workers, "replicas": self.replicas,
                "precision": self.precision, "per_replica_batch": self.per_replica_batch,
                "global_batch": self.global_batch,
                "strategy": self.kind}


def _cluster(tf_config: dict) -> list:
    return tf_config.get("cluster", {}).get("worker", [])


def plan(train: TrainSettings) -> Plan:
    """The plan for this process, from `TF_CONFIG`, the GPUs it sees and `train.*`. Sets the Keras precision
    policy. With several workers, call it before TensorFlow runs anything else in the process."""
    import tensorflow as tf

    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    workers = len(_cluster(tf_config))
    precision = train.precision
    if workers > 1:  # first: collective ops must be set up before TensorFlow runs anything in this process
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=train.distribution.timeout_seconds)
        strategy, kind = (tf.distribute.MultiWorkerMirroredStrategy(communication_options=options),
                          "MultiWorkerMirrored")
    gpus = tf.config.list_physical_devices("GPU")
    if workers <= 1:
        strategy, kind = (tf.distribute.MirroredStrategy(),
                          "Mirrored") if len(gpus) > 1 else (None, "one device")
    if precision == "auto":
        precision = "mixed_float16" if gpus else "float32"
    if precision != "float32":
        tf.keras.mixed_precision.set_global_policy(precision)
    replicas = strategy.num_replicas_in_sync if strategy else 1
    devices = [d.name for d in gpus] or ["CPU"]
    if not gpus and tf.test.is_built_with_cuda():  # the GPU image on a machine (or container) without a GPU
        print("train: no GPU visible to this CUDA build of TensorFlow; training on the CPU", flush=True)
    return Plan(strategy, kind, max(workers, 1), int(tf_config.get("task", {}).get("index", 0)) if workers
                > 1 else 0,
                replicas, devices, precision, train.batch_size)


def worker_share(records: list[dict], workers: int, index: int) -> tuple[list[dict], tuple | None]:
    """The TFRecord files worker `index` of `workers` reads, and the (count, index) record-level shard to take
    of them: whole files where there are enough to go round (`convert.shards` ≥ workers), else every n-th
    record."""
    if len(records) >= workers:
        return records[index::workers], None
    return records, (workers, index)


def steps_per_epoch(records: list[dict], workers: int, batch: int) -> int:
    """Steps every worker takes each epoch: the smallest share's full batches (at least one), so that no
    worker waits in a collective for a step another never takes."""
    shares = []
    for index in range(workers):
        files, shard = worker_share(records, workers, index)
        total = sum(r["records"] for r in files)
        shares.append(total // shard[0] if shard else total)
    return max(1, min(shares) // batch)


def sagemaker_tf_config(root: Path, port: int) -> dict | None:
    """`TF_CONFIG` for this host of a SageMaker training job (`resourceconfig.json`, else `SM_HOSTS` and
    `SM_CURRENT_HOST`); None for a job of one host. The first host is the chief."""
    path = root / "input" / "config" / "resourceconfig.json"
    if path.is_file():
        config = json.loads(path.read_text())
        hosts, current = config["hosts"], config["current_host"]
    elif os.environ.get("SM_HOSTS"):
        hosts, current = json.loads(os.environ["SM_HOSTS"]), os.environ["SM_CURRENT_HOST"]
    else:
        return None
    if len(hosts) < 2:
        return None
    return {"cluster": {"worker": [f"{host}:{port + i}" for i, host in enumerate(hosts)]},
            "task": {"type": "worker", "index": hosts.index(current)}}


def own_address(main_ip: str) -> str:
    """This machine's address as the main node sees it: the interface a route to `main_ip` leaves by."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((main_ip, 9))  # a datagram socket's connect sends nothing
        return probe.getsockname()[0]


def rendezvous(exchange_uri: str, nodes: int, index: int, address: str, timeout_seconds: float) -> list[str]:
    """Every node's address, in node order: each node writes its own under `exchange_uri` (a folder or s3://
    prefix of the run) and waits until all have. Metaflow's `@parallel` tells each node only the main node's
    address, and a worker of `MultiWorkerMirroredStrategy` needs every worker's."""
    from emoji_reco import storage

    storage.put_bytes(address.encode(), storage.join(exchange_uri, f"node-{index}"))
    deadline = time.monotonic() + timeout_seconds
    while True:
        found = [storage.read_text(storage.join(exchange_uri, f"node-{i}")) for i in range(nodes)]
        if all(found):
            return found
        if time.monotonic() > deadline:
            missing = ", ".join(str(i) for i, a in enumerate(found) if not a)
            raise ModelError(f"Node(s) {missing} of {nodes} did not start within {timeout_seconds:.0f} s "
                             "(train.distribution.start_timeout_seconds).")
        time.sleep(0.5)


def parallel_tf_config(nodes: int, index: int, main_ip: str, exchange_uri: str,
                       distribution: DistributionSettings) -> dict | None:
    """`TF_CONFIG` for node `index` of a Metaflow `@parallel` step of `nodes` nodes (None for one node): node
    i is worker i, listening on `port + i`; node 0, Metaflow's control task, is the chief."""
    if nodes < 2:
        return None
    port = distribution.port
    address = f"{own_address(main_ip)}:{port + index}"
    workers = rendezvous(exchange_uri, nodes, index, address, distribution.start_timeout_seconds)
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}


BUNDLE_WRITTEN = "emoji-reco/bundle-written"


def release_workers(plan: Plan) -> None:
    """The chief, once its bundle is written (or it failed): the other workers may end. Until then they stay
    up, since TensorFlow's coordination service aborts the chief's work when a worker of the cluster stops
    early."""
    # the coordination service's key-value store: no public API yet
    from tensorflow.python.eager import context

    if plan.workers > 1 and plan.chief:
        context.context().set_config_key_value(BUNDLE_WRITTEN, "1")


def wait_for_chief(plan: Plan, timeout_seconds: float) -> None:
    """A worker that is not the chief: wait until the chief has written the bundle (an error if the chief is
    lost)."""
    from tensorflow.python.eager import context

    if plan.workers > 1 and not plan.chief:
        try:
            context.context().get_config_key_value(BUNDLE_WRITTEN, timeout_in_ms=int(timeout_seconds * 1000))
        except Exception as exc:
            raise ModelError(f"The chief did not write the bundle within "
                             f"{timeout_seconds:.0f} s ({exc}).") from exc

