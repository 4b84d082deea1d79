"""Training in the step's own process (on this machine, or in the step's Batch or Kubernetes container), and
serving from the local endpoint under $EMOJI_RECO_HOME with the runs' tags as the model registry."""
from pathlib import Path

from emoji_reco.backends.contract import (
    Approved,
    Deployment,
    ModelVersion,
    OnUpdate,
    RunInfo,
    Training,
    TrainingData,
)
from emoji_reco.errors import EmojiRecoError
from emoji_reco.settings import Settings


class LocalTrainer:
    """Fine-tunes with Keras where the train step runs."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def train(self, run: RunInfo, data: TrainingData, on_update: OnUpdate | None = None) -> Training:
        """Trains alone, or as one worker of the nodes of a `@parallel` step (`TF_CONFIG` from their
        rendezvous)."""
        import json
        import os

        from emoji_reco import storage
        from emoji_reco.model import distribution, training

        tf_config = distribution.parallel_tf_config(run.nodes, run.node_index, run.main_ip, run.exchange_uri,
                                                    self.settings.train.distribution)
        if tf_config:
            os.environ["TF_CONFIG"] = json.dumps(tf_config)
        return Training.of(training.train_bundle(data.tfrecords, data.emojis, self.settings,
                                                storage.join(run.run_root, "model"),
                                                {"run": run.pathspec, "data": data.source},
                                                on_update=on_update))


class LocalTarget:
    """The local endpoint `deploy.endpoint`; the registry is the tags of `deploy.flow`'s runs (set by the
    register step, or by a person)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.flow_name = settings.deploy.flow

    def champion(self, tmp: str) -> Path | None:
        from emoji_reco.serving.local_endpoint import LocalEndpoint

        return LocalEndpoint(self.settings.deploy.endpoint).current_dir()

    def register(self, run: RunInfo, bundle_uri: str, metrics: dict, verdict: dict) -> None:
        return None  # the register step's run tags are the whole registry

    def deploy(self, run: RunInfo, bundle_uri: str, verdict: dict, smoke: list[str],
               recheck=None) -> Deployment:
        if not verdict["passed"]:
            return Deployment(deployed=False, reason="; ".join(verdict["reasons"]))
        return self._publish(run.run_id, bundle_uri, smoke, recheck)

    def approved(self, model: str) -> Approved:
        """A run tagged approved (`EmojiFlow/1234`, or the newest such run)."""
        from emoji_reco import registry

        return Approved.of(registry.approved_run(model, self.flow_name))

    def serve(self, model: Approved, smoke: list[str]) -> Deployment:
        return self._publish(model.version, model.bundle_uri, smoke, None)

    def _publish(self, version: str, bundle_uri: str, smoke: list[str], recheck) -> Deployment:
        from emoji_reco.serving import local_endpoint

        return Deployment.of(local_endpoint.deploy(bundle_uri, self.settings.deploy, version, smoke, recheck,
                                                   self.settings.serve.runtime))

    def models(self) -> list[ModelVersion]:
        from emoji_reco import registry

        return [ModelVersion(m["run"], ",".join(m["state"]),
                             m["created_at"]) for m in registry.models(self.flow_name)]

    def set_approval(self, model: str, approve: bool, note: str = "") -> str:
        from emoji_reco import registry

        if note:
            raise EmojiRecoError("Run tags keep no approval note: leave out --note, or use "
                                 "SageMaker's registry.")
        return registry.tag_verdict(model, {"passed": approve})
