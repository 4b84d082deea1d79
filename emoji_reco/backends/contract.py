"""The seam between a flow and the places it trains and serves: what every trainer and deploy target does, and
the typed results they hand back. A flow step calls only these methods; a new backend implements one of the
protocols (`tests/backends/test_backends.py` checks every registered one against them)."""
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

# Training progress as it goes: (per-epoch history, progress points within epochs), both lists of dicts.
OnUpdate = Callable[[list, list], None]


class StoredAsDict:
    """A result that a run keeps as a plain dict artifact (readable without this module): its fields, with
    `details` merged in; fields that are None are left out unless KEEP_EMPTY."""

    KEEP_EMPTY = False

    @classmethod
    def of(cls, result: dict):
        """A backend's plain result: the fields this class names, and the rest as `details`."""
        names = {f.name for f in dataclasses.fields(cls)} - {"details"}
        return cls(**{k: v for k, v in result.items() if k in names},
                   details={k: v for k, v in result.items() if k not in names})

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "details"}
        return {**{k: v for k, v in out.items() if self.KEEP_EMPTY or v is not None}, **self.details}


@dataclass(frozen=True)
class RunInfo:
    """What a step tells a backend about its run."""

    pathspec: str  # EmojiFlow/1234
    run_id: str
    run_root: str  # where the run keeps its own files, under its prefix in the datastore
    datastore_root: str
    attempt: int = 0
    # In a Metaflow `@parallel` step: how many nodes run it, this one's index (0: the control task) and the
    # main node's address; where the nodes exchange theirs (under the run's root, one folder per gang and
    # attempt).
    nodes: int = 1
    node_index: int = 0
    main_ip: str = "127.0.0.1"
    exchange_uri: str = ""

    @classmethod
    def of(cls, flow) -> "RunInfo":
        from metaflow import current

        from emoji_reco import storage

        root, gang = storage.run_root(flow), current.get("parallel")
        nodes = {} if gang is None else {
            "nodes": gang.num_nodes, "node_index": gang.node_index, "main_ip": gang.main_ip,
            "exchange_uri": storage.join(root, "rendezvous", current.step_name,
                                         f"{gang.control_task_id}-{current.retry_count}")}
        return cls(f"{current.flow_name}/{current.run_id}", current.run_id, root,
                   storage.datastore_root(flow),
                   current.retry_count, **nodes)


@dataclass(frozen=True)
class TrainingData:
    """What a trainer trains on: the convert step's TFRecord shards (`split`, `uri`, `records`, ...), the
    emoji of each class id, and where the tweets came from (kept in the bundle's metadata)."""

    tfrecords: list
    emojis: list
    source: str


@dataclass
class Training(StoredAsDict):
    """A finished training: where its bundle is, and how it went."""

    KEEP_EMPTY = True

    bundle_uri: str | None  # None on a worker that is not the chief: the chief writes the one bundle
    history: list  # one row per epoch
    steps: list  # progress points within epochs (empty where the backend reports epochs only)
    seconds: float
    examples_per_second: float | None
    ensemble: dict | None  # the n-gram half's fit and validation scores (metadata.json's `ensemble`)
    distribution: dict | None = None  # devices, workers, replicas, precision, batches (`distribution.Plan`)
    details: dict = field(default_factory=dict)  # the backend's own, e.g. {"sagemaker": <the job>}


@dataclass
class Approved(StoredAsDict):
    """A model approved to serve (by the gate or by a person), found without a training run."""

    version: str  # the name it serves under
    run: str  # the run that trained it, EmojiFlow/1234
    bundle_uri: str
    details: dict = field(default_factory=dict)  # the registry's own (a SageMaker package's ARN, image, ...)


@dataclass
class Deployment(StoredAsDict):
    """What a deploy did: whether the model serves, and if so where and how to ask it."""

    deployed: bool
    reason: str | None = None  # why it did not
    version: str | None = None
    target: str | None = None
    endpoint: str | None = None
    path: str | None = None  # where it serves, in words for a person
    query: str | None = None  # a command that asks it
    changed: bool | None = None  # False: that version was serving already
    smoke: list | None = None  # (text, top emojis) of the smoke prediction
    details: dict = field(default_factory=dict)  # the target's own


@dataclass(frozen=True)
class ModelVersion:
    """One entry of a target's model registry, as `emoji-reco models list` shows it."""

    reference: str  # what `models approve` takes: a run (EmojiFlow/1234) or a package version
    state: str  # approved, rejected, champion:<endpoint>; or the package's approval status
    created_at: str
    summary: str = ""  # e.g. its top-1 and run


@runtime_checkable
class Trainer(Protocol):
    """Fine-tunes a base model on a run's TFRecords and leaves a model bundle under the run's prefix."""

    def __init__(self, settings: dict): ...

    def train(self, run: RunInfo, data: TrainingData, on_update: OnUpdate | None = None) -> Training:
        """Train; `on_update(history, steps)` whenever the backend learns of progress."""


@runtime_checkable
class Target(Protocol):
    """Where models are registered and served."""

    def __init__(self, settings: dict): ...

    def champion(self, tmp: str) -> Path | None:
        """The bundle that serves now, as a local folder (fetched under `tmp` if need be); None before any."""

    def register(self, run: RunInfo, bundle_uri: str, metrics: dict, verdict: dict) -> dict | None:
        """Record a candidate in the target's registry; its entry, or None where the run's tags are the
        registry."""

    def deploy(self, run: RunInfo, bundle_uri: str, verdict: dict, smoke: list[str],
               recheck: Callable[[Path | None], dict | None] | None = None) -> Deployment:
        """Serve what should serve after this run, after a smoke prediction on `smoke`.
        `recheck(champion_dir)`, given the bundle serving just before the switch, may refuse it (a verdict
        with `passed` false)."""

    def approved(self, model: str) -> Approved:
        """An approved model: "newest", or the target's own reference (a run, a package version or ARN)."""

    def serve(self, model: Approved, smoke: list[str]) -> Deployment:
        """Serve an approved model after a smoke prediction (a person's approval overrides the gate)."""

    def models(self) -> list[ModelVersion]:
        """Every registered model, newest first."""

    def set_approval(self, model: str, approve: bool, note: str = "") -> str:
        """Approve or reject a registered model by hand; its new state."""
