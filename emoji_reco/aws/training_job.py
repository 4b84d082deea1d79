"""The train step on SageMaker: a training job over the run's TFRecords in S3, its status in the step's log.

Two modes (`sagemaker.training.mode`): "script" runs `emoji_reco.aws.job_entry` in the AWS TensorFlow training
image (our package and its requirements shipped as the job's source), "container" runs our own training image
(`containers/train`, URI in `sagemaker.training.image`). Both read the same hyperparameters and write the same
bundle.
"""
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import boto3

from emoji_reco import storage
from emoji_reco.aws import sdk
from emoji_reco.errors import EmojiRecoError, ModelError
from emoji_reco.model import base_model
from emoji_reco.serving import sources
from emoji_reco.settings import Settings

ENTRY = "from emoji_reco.aws.job_entry import main\n\nraise SystemExit(main())\n"
TERMINAL = ("Completed", "Failed", "Stopped")
# The AWS image brings TensorFlow (and we pin tf-keras to it); the rest of our requirements are installed in
# the job.
PROVIDED_BY_IMAGE = ("tensorflow", "tf-keras")


def job_name(run_id: str, attempt: int) -> str:
    """A SageMaker job name for this run and attempt (letters, digits, hyphens; at most 63 characters)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", f"emoji-reco-{run_id}-{attempt}")[-63:].lstrip("-")


def script_source(folder: Path, framework_version: str) -> str:
    """Script mode's source: an entry point, our package, and the requirements the AWS image lacks."""
    import emoji_reco

    shutil.copytree(Path(emoji_reco.__file__).parent, folder / "emoji_reco",
                    ignore=shutil.ignore_patterns("__pycache__", "static"))
    (folder / "train.py").write_text(ENTRY)
    requirements = [r for r in importlib.metadata.requires("emoji-reco") or [] if "extra ==" not in r
                    and re.split(r"[<>=~! \[;]", r, maxsplit=1)[0].lower() not in PROVIDED_BY_IMAGE]
    (folder / "requirements.txt").write_text("\n".join([*requirements, f"tf-keras~={framework_version}.0"])
                                             + "\n")
    return str(folder)


def stage_base_model(spec: str, datastore_root: str) -> str:
    """The base model somewhere a training job can read it: S3 URIs and Hugging Face ids as they are, local
    folders (the bundled model included) copied once under the datastore."""
    if storage.is_s3(spec) or not base_model.is_local(spec):
        return spec
    folder = base_model.resolve(spec)
    uri = storage.join(datastore_root, storage.FLOW_FILES, "base_models", base_model.fingerprint(folder))
    if storage.read_text(storage.join(uri, "config.json")) is None:
        storage.put_dir(str(folder), uri)
    return uri


def wait(name: str, log=print, poll_seconds: float = 15, client=None) -> dict:
    """Poll the job until it ends, logging each status change; its description, or an error with the
    reason."""
    client, seen = client or boto3.client("sagemaker"), set()
    while True:
        job = client.describe_training_job(TrainingJobName=name)
        for step in job.get("SecondaryStatusTransitions", []):
            key = (step["Status"], step.get("StatusMessage", ""))
            if key not in seen:
                seen.add(key)
                log(f"[{name}] {key[0]}: {key[1]}")
        if job["TrainingJobStatus"] in TERMINAL:
            break
        time.sleep(poll_seconds)
    if job["TrainingJobStatus"] != "Completed":
        raise EmojiRecoError(f"SageMaker training job {name} {job['TrainingJobStatus'].lower()}: "
                             f"{job.get('FailureReason', 'no reason given')}. Its logs: CloudWatch log group "
                             f"/aws/sagemaker/TrainingJobs, streams {name}/*.")
    return job


def channels(tfrecords: list[dict]) -> dict:
    """The job's `train` and `validation` input channels: for each split, the S3 prefix its TFRecord files
    share."""
    out = {}
    for split in ("train", "validation"):
        uris = [r["uri"] for r in tfrecords if r["split"] == split]
        if not uris or not all(storage.is_s3(u) for u in uris):
            raise EmojiRecoError(f"SageMaker training reads the {split} TFRecords from S3, but they are at "
                                 f"{uris or 'nowhere'}: run on Metaflow's S3 datastore "
                                 f"(`metaflow configure aws`, "
                                 "or METAFLOW_DEFAULT_DATASTORE=s3).")
        out[split] = os.path.commonprefix(uris)
    return out


def train(tfrecords: list[dict], emojis: list, settings: Settings, run_root: str, datastore_root: str,
          name: str,
          provenance: dict, log=print) -> dict:
    """Run a training job on `tfrecords` (the convert step's shards, in S3); what SageMaker reports about it.
    `provenance` goes into the bundle's metadata."""
    inputs = channels(tfrecords)
    training = settings.sagemaker.training
    if training.mode == "container" and not training.image:
        raise EmojiRecoError("sagemaker.training.mode 'container' needs "
                             "sagemaker.training.image (an ECR URI).")
    job_settings = {"model": {**settings.model.model_dump(),
                              "base": stage_base_model(settings.model.base, datastore_root)},
                    "train": settings.train.model_dump()}
    hyperparameters = {"settings": json.dumps(job_settings), "emojis": json.dumps(emojis, ensure_ascii=False),
                       "provenance": json.dumps(provenance, ensure_ascii=False)}
    with tempfile.TemporaryDirectory() as tmp:
        source = script_source(Path(tmp), training.framework_version) if training.mode == "script" else None
        estimator = sdk.estimator(training, sdk.execution_role(settings), storage.bucket(run_root),
                                            storage.join(run_root, "sagemaker"), hyperparameters, source)
        started = time.time()
        estimator.fit(inputs, wait=False, job_name=name)
    job = wait(name, log, training.poll_seconds)
    return {"job_name": name, "job_arn": job["TrainingJobArn"], "status": job["TrainingJobStatus"],
            "image": job["AlgorithmSpecification"].get("TrainingImage"),
            "model_artifact": job["ModelArtifacts"]["S3ModelArtifacts"],
            "metrics": {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])},
            "billable_seconds": job.get("BillableTimeInSeconds"), "seconds": round(time.time() - started, 1)}


def fetch_model(model_artifact: str, bundle_uri: str) -> str:
    """Unpack the job's model.tar.gz into the run's model folder (where evaluate and deploy look)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            (tarball,) = storage.get_files([model_artifact], tmp)
        except FileNotFoundError as exc:
            raise ModelError(f"The training job finished but its model is not at {model_artifact}.") from exc
        storage.put_dir(str(sources.extract(Path(tarball), Path(tmp) / "model")), bundle_uri)
    return bundle_uri


def train_bundle(tfrecords: list[dict], emojis: list, settings: Settings, run_root: str, datastore_root: str,
                 name: str,
                 provenance: dict, log=print) -> dict:
    """The whole train step on SageMaker: the job, then its model unpacked where the local backend puts it."""
    job = train(tfrecords, emojis, settings, run_root, datastore_root, name, provenance, log)
    bundle_uri = fetch_model(job["model_artifact"], storage.join(run_root, "model"))
    metadata = json.loads(storage.read_text(storage.join(bundle_uri, "metadata.json")) or "{}")
    history = metadata.get("history", [])
    rates = [h["examples_per_second"] for h in history if "examples_per_second" in h]
    return {"bundle_uri": bundle_uri, "history": history, "steps": [], "seconds": job["seconds"],
            "examples_per_second": round(sum(rates) / len(rates), 1) if rates else None,
            "ensemble": metadata.get("ensemble"), "sagemaker": job}
