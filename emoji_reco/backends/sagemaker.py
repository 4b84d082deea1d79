"""Training as a SageMaker training job, and serving from a SageMaker real-time endpoint with the Model
Registry."""
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
from emoji_reco.settings import Settings


class SageMakerTrainer:
    """A training job over the run's TFRecords in S3, its status in the step's log. SageMaker reports epochs
    only when the job ends: `on_update` hears of them then."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def train(self, run: RunInfo, data: TrainingData, on_update: OnUpdate | None = None) -> Training:
        from emoji_reco.aws import training_job

        result = training_job.train_bundle(data.tfrecords, data.emojis, self.settings, run.run_root,
                                           run.datastore_root, training_job.job_name(run.run_id, run.attempt),
                                           {"run": run.pathspec, "data": data.source})
        training = Training.of(result)
        if on_update:
            on_update(training.history, training.steps)
        return training


class SageMakerTarget:
    """A SageMaker real-time endpoint. Candidates are packages in the Model Registry; the newest approved one
    serves (approval by the gate, or by a person with `registry.approval: manual`); the champion a candidate
    must match is the newest approved package of another run."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.group = settings.sagemaker.registry.group

    def _rival(self, tmp: str, candidate_run: str | None = None) -> Path | None:
        """The newest approved package not trained by `candidate_run`, fetched to `tmp/<its version>`."""
        from emoji_reco import storage
        from emoji_reco.aws import model_registry

        rivals = [v for v in model_registry.versions(self.group, model_registry.APPROVED)
                  if v.get("bundle_uri") and v.get("run") != candidate_run]
        if not rivals:
            return None
        return Path(storage.get_dir(rivals[0]["bundle_uri"], f"{tmp}/{rivals[0]['version']}"))

    def champion(self, tmp: str) -> Path | None:
        return self._rival(tmp)

    def register(self, run: RunInfo, bundle_uri: str, metrics: dict, verdict: dict) -> dict:
        from emoji_reco.aws import endpoint, model_registry

        model = endpoint.upload_model(bundle_uri, self.settings, run.run_id, run.run_root)
        package = model_registry.register(model, self.settings, run.pathspec, metrics, verdict, run.run_root)
        print(f"registered {package['arn']}: {package['status']}")
        return package

    def deploy(self, run: RunInfo, bundle_uri: str, verdict: dict, smoke: list[str],
               recheck=None) -> Deployment:
        import tempfile

        from emoji_reco.aws import model_registry
        from emoji_reco.model import evaluation

        newest = model_registry.newest_approved(self.group)
        if not newest:
            return Deployment(deployed=False,
                              reason="; ".join(verdict["reasons"]) + f"; no approved version in {self.group}")
        if recheck and newest.get("run") == run.pathspec:
            with tempfile.TemporaryDirectory(prefix="emoji-reco-recheck-") as tmp:
                refused = recheck(self._rival(tmp, run.pathspec))
            if refused is not None and not refused["passed"]:
                return Deployment(deployed=False, reason=evaluation.refusal(refused),
                                  details={"recheck": refused})
        return self.serve(Approved.of(newest), smoke)

    def approved(self, model: str) -> Approved:
        """An Approved package of the group, by ARN or version number, or the newest one."""
        from emoji_reco.aws import model_registry

        return Approved.of(model_registry.approved(self.group, model))

    def serve(self, model: Approved, smoke: list[str]) -> Deployment:
        from emoji_reco.aws import endpoint

        return Deployment.of({"deployed": True, **endpoint.deploy(model.as_dict(), self.settings, smoke)})

    def models(self) -> list[ModelVersion]:
        from emoji_reco.aws import model_registry

        return [ModelVersion(str(v["package_version"]), v["status"], v["created_at"],
                             f"top-1 {v.get('top1', '?'):7} {v.get('run', '')}".rstrip())
                for v in model_registry.versions(self.group)]

    def set_approval(self, model: str, approve: bool, note: str = "") -> str:
        from emoji_reco.aws import model_registry

        status = model_registry.APPROVED if approve else model_registry.REJECTED
        changed = model_registry.set_status(model, status, self.group, note)
        return f"{changed['arn']}: {changed['status']}"
