"""Where and how a flow's steps run, from the config's `platform` section (no code edits between laptop and
AWS).

`Placement` (on `BaseFlow`, so on every flow):
- `batch_steps`: steps sent to AWS Batch (`@batch`, sized by their `@resources`); `batch_queue` picks the
  queue, `batch_image` the image (our training image in ECR; else Metaflow's METAFLOW_BATCH_CONTAINER_IMAGE).
- `kubernetes_steps`: steps sent to Kubernetes (`@kubernetes`, sized by the same `@resources`).
- `remote_environment`: variables set (`@environment`) in every step sent to Batch or Kubernetes.
- `retries`: `@retry` count, `retry_minutes` apart, for every step without a `@retry` of its own: a step that
  reads or writes the datastore (S3 in AWS mode) or asks a service can meet a transient error. A step that
  does no I/O, where a failure is a mistake to fix, says so with `@retry(times=0)` (EmojiFlow's `start`, which
  only fixes the settings).
- `timeout_minutes`: `@timeout` per step name, where a hang is possible.
- `datastore`: the datastore the config expects ("s3" for AWS); a run on another one stops with what to set.

`Scheduled` (on a flow that runs by itself, e.g. EmojiFlow), from the config section it names:
- `schedule`: `@schedule` arguments (`{"weekly": true}`, `{"cron": "..."}`), used by `step-functions create`
  and `argo-workflows create`.
- `trigger`: `@trigger` arguments (`{"event": {"name": ..., "parameters": {"data": ...}}}`): Argo Workflows
  starts a run when that event arrives (Step Functions has no triggers: see `emoji-reco aws wire-retrain`).
"""
from metaflow import FlowMutator

from emoji_reco import settings, storage
from emoji_reco.errors import EmojiRecoError
from emoji_reco.settings import Settings
from emoji_reco.settings.sections import PlatformSettings, TrainSettings


class Placement(FlowMutator):
    """Adds @batch, @kubernetes, @retry and @timeout as the config's `platform` section says."""

    def pre_mutate(self, mutable_flow):
        platform = _settings(mutable_flow).platform
        for name, step in mutable_flow.steps:
            if platform.retries and not step.has_decorator("retry"):
                step.add_decorator("retry", deco_kwargs={"times": platform.retries,
                                                         "minutes_between_retries": platform.retry_minutes})
            if platform.timeout_minutes.get(name):
                step.add_decorator("timeout", deco_kwargs={"minutes": platform.timeout_minutes[name]})
            on_batch, on_kubernetes = name in platform.batch_steps, name in platform.kubernetes_steps
            if on_batch:
                step.add_decorator("batch", deco_kwargs={key: value for key, value in (
                    ("queue", platform.batch_queue), ("image", platform.batch_image)) if value})
            if on_kubernetes:
                step.add_decorator("kubernetes")
            if (on_batch or on_kubernetes) and platform.remote_environment:
                step.add_decorator("environment", deco_kwargs={"vars": dict(platform.remote_environment)})


class Scheduled(FlowMutator):
    """Adds @schedule and @trigger from the `schedule` and `trigger` keys of a config section (`platform`)."""

    def init(self, section: str = "platform"):
        self.section = section

    def pre_mutate(self, mutable_flow):
        section = getattr(_settings(mutable_flow), self.section)
        for name in ("schedule", "trigger"):
            if getattr(section, name, None):
                mutable_flow.add_decorator(name, deco_kwargs=dict(getattr(section, name)))


def _settings(mutable_flow) -> Settings:
    return settings.typed(dict(mutable_flow.configs)["config"].to_dict())


def check_datastore(platform: PlatformSettings, datastore_root: str) -> None:
    """Stop early when the config expects the S3 datastore and the run uses another."""
    if platform.datastore == "s3" and not storage.is_s3(datastore_root):
        raise EmojiRecoError(
            f"This config expects Metaflow's S3 datastore, but the run stores its artifacts in "
            f"{datastore_root}. "
            "Run `metaflow configure aws` (or set METAFLOW_DEFAULT_DATASTORE=s3 and "
            "METAFLOW_DATASTORE_SYSROOT_S3=s3://<bucket>/metaflow), or pass --datastore=s3.")


def training_nodes(train: TrainSettings, multinode: bool) -> int:
    """How many nodes the train step runs on (`train.workers`): more than one only in a flow whose train step
    is `@parallel` (MultiNodeEmojiFlow) and with the local trainer (a SageMaker job spans hosts by itself)."""
    workers = train.workers
    if workers < 1:
        raise EmojiRecoError(f"train.workers: {workers} (at least 1).")
    if workers > 1 and train.backend != "local":
        raise EmojiRecoError(f"train.workers: {workers} needs train.backend 'local'; a "
                             f"SageMaker training job spans "
                             "hosts with sagemaker.training.instance_count.")
    if workers > 1 and not multinode:
        raise EmojiRecoError(f"train.workers: {workers} trains on {workers} nodes of a @parallel step: run "
                             "flows/multinode_flow.py (EmojiFlow's train step is one node, as "
                             "Step Functions needs).")
    return workers
