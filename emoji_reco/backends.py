"""Where a run trains, and where its model is registered and served: chosen by config (`train.backend`,
`deploy.target`) through one small interface, so EmojiFlow's steps never ask which. A new place to train is one
trainer class and one entry in TRAINERS; a new place to serve, one target class and one entry in TARGETS.

- A trainer's `train(run, tfrecords, emojis, data_source, on_update)` leaves a model bundle under the run's prefix
  and returns `{"bundle_uri", "history", "steps", "seconds", "examples_per_second", ...}`.
- A target's `champion(tmp)` is the bundle it serves now (or None); `register(run, bundle_uri, metrics, verdict)`
  records a candidate (None where the run's tags are the whole registry); `deploy(run, bundle_uri, verdict, smoke,
  recheck)` serves what should serve after a smoke prediction and returns `{"deployed": bool, ...}`.
- For deploys without a training run (DeployFlow, `emoji-reco models approve --deploy`): `approved(model)` finds an
  approved model (`"newest"`, or the target's own reference) as `{"version", "run", "bundle_uri", ...}`, and
  `serve(model, smoke)` serves it after the same smoke prediction.
"""
from dataclasses import dataclass
from pathlib import Path

from emoji_reco.settings import ConfigError


@dataclass(frozen=True)
class RunInfo:
    """What a step tells a backend about its run."""

    pathspec: str  # EmojiFlow/1234
    run_id: str
    run_root: str  # where the run keeps its own files, under its prefix in the datastore
    datastore_root: str
    attempt: int = 0

    @classmethod
    def of(cls, flow) -> "RunInfo":
        from metaflow import current

        from emoji_reco import storage

        return cls(f"{current.flow_name}/{current.run_id}", current.run_id, storage.run_root(flow),
                   storage.datastore_root(flow), current.retry_count)


class LocalTrainer:
    """Fine-tunes in the step's own process: on this machine, or in the step's Batch container."""

    def __init__(self, settings: dict):
        self.settings = settings

    def train(self, run: RunInfo, tfrecords: list, emojis: list, data_source: str, on_update=None) -> dict:
        from emoji_reco import storage
        from emoji_reco.model import training

        return training.train_bundle(tfrecords, emojis, self.settings, storage.join(run.run_root, "model"),
                                     {"run": run.pathspec, "data": data_source}, on_update=on_update)


class SageMakerTrainer:
    """A SageMaker training job over the run's TFRecords in S3; its status goes to the step's log."""

    def __init__(self, settings: dict):
        self.settings = settings

    def train(self, run: RunInfo, tfrecords: list, emojis: list, data_source: str, on_update=None) -> dict:
        from emoji_reco.aws import training_job

        return training_job.train_bundle(emojis, self.settings, run.run_root, run.datastore_root,
                                         training_job.job_name(run.run_id, run.attempt))


class LocalTarget:
    """The local endpoint under $EMOJI_RECO_HOME; the registry is the runs' tags (set by the register step)."""

    def __init__(self, settings: dict):
        self.settings = settings

    def champion(self, tmp: str) -> Path | None:
        from emoji_reco.serving.local_endpoint import LocalEndpoint

        return LocalEndpoint(self.settings["deploy"]["endpoint"]).current_dir()

    def register(self, run: RunInfo, bundle_uri: str, metrics: dict, verdict: dict) -> dict | None:
        return None

    def deploy(self, run: RunInfo, bundle_uri: str, verdict: dict, smoke: list[str], recheck=None) -> dict:
        if not verdict["passed"]:
            return {"deployed": False, "reason": "; ".join(verdict["reasons"])}
        return self.serve({"version": run.run_id, "bundle_uri": bundle_uri}, smoke, recheck)

    def approved(self, model: str) -> dict:
        """A run tagged approved (`EmojiFlow/1234`, or the newest such run)."""
        from emoji_reco import registry

        return registry.approved_run(model)

    def serve(self, model: dict, smoke: list[str], recheck=None) -> dict:
        from emoji_reco.serving import local_endpoint

        return local_endpoint.deploy(model["bundle_uri"], self.settings["deploy"], model["version"], smoke, recheck)


class SageMakerTarget:
    """A SageMaker real-time endpoint. Candidates are packages in the Model Registry; the newest approved one
    serves (approval by the gate, or by a person with `registry.approval: manual`)."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.group = settings["sagemaker"]["registry"]["group"]

    def champion(self, tmp: str) -> Path | None:
        from emoji_reco import storage
        from emoji_reco.aws import model_registry

        newest = model_registry.newest_approved(self.group)
        return Path(storage.get_dir(newest["bundle_uri"], tmp)) if newest and newest.get("bundle_uri") else None

    def register(self, run: RunInfo, bundle_uri: str, metrics: dict, verdict: dict) -> dict:
        from emoji_reco.aws import endpoint, model_registry

        model = endpoint.upload_model(bundle_uri, self.settings, run.run_id, run.run_root)
        package = model_registry.register(model, self.settings, run.pathspec, metrics, verdict, run.run_root)
        print(f"registered {package['arn']}: {package['status']}")
        return package

    def deploy(self, run: RunInfo, bundle_uri: str, verdict: dict, smoke: list[str], recheck=None) -> dict:
        from emoji_reco.aws import model_registry

        newest = model_registry.newest_approved(self.group)
        if not newest:
            return {"deployed": False, "reason": "; ".join(verdict["reasons"]) + f"; no approved version in {self.group}"}
        return self.serve(newest, smoke)

    def approved(self, model: str) -> dict:
        """An Approved package of the group, by ARN or version number, or the newest one."""
        from emoji_reco.aws import model_registry

        return model_registry.approved(self.group, model)

    def serve(self, model: dict, smoke: list[str], recheck=None) -> dict:
        from emoji_reco.aws import endpoint

        return {"deployed": True, **endpoint.deploy(model, self.settings, smoke)}


TRAINERS = {"local": LocalTrainer, "sagemaker": SageMakerTrainer}
TARGETS = {"local": LocalTarget, "sagemaker": SageMakerTarget}


def _pick(table: dict, key: str, value: str):
    if value not in table:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, table))}.")
    return table[value]


def trainer(settings: dict):
    """The trainer `train.backend` names."""
    return _pick(TRAINERS, "train.backend", settings["train"]["backend"])(settings)


def target(settings: dict):
    """The deploy target `deploy.target` names."""
    return _pick(TARGETS, "deploy.target", settings["deploy"]["target"])(settings)
