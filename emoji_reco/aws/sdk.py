"""The one place that imports the SageMaker Python SDK (2.257.x; the `aws` extra): sessions, image URIs,
estimators.

The SDK's telemetry is turned off before it loads. A later SDK change (3.x dropped these classes) touches this
file only; everything else talks to SageMaker through boto3.
"""
import os
import tempfile
from pathlib import Path

import boto3

from emoji_reco.errors import EmojiRecoError
from emoji_reco.settings import Settings
from emoji_reco.settings.sections import TrainingJobSettings

_TELEMETRY_OFF = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"


def _sdk():
    if "SAGEMAKER_USER_CONFIG_OVERRIDE" not in os.environ:
        path = Path(tempfile.gettempdir()) / "emoji-reco-sagemaker-config.yaml"
        path.write_text(_TELEMETRY_OFF)
        os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(path)
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    try:
        import sagemaker
    except ImportError as exc:
        raise EmojiRecoError("SageMaker training and deploys need the SDK: pip install "
                             "'emoji-reco[aws]'.") from exc
    return sagemaker


def execution_role(settings: Settings) -> str:
    """The IAM role SageMaker jobs and models run as: `sagemaker.role`, else $EMOJI_RECO_SAGEMAKER_ROLE."""
    role = settings.sagemaker.role or os.environ.get("EMOJI_RECO_SAGEMAKER_ROLE")
    if not role:
        raise EmojiRecoError("SageMaker needs an execution role: set sagemaker.role in the config or "
                             "EMOJI_RECO_SAGEMAKER_ROLE to its ARN.")
    return role


def session(bucket: str):
    """An SDK session on boto3's default credentials and region, keeping its files in `bucket`."""
    return _sdk().Session(boto_session=boto3.Session(), default_bucket=bucket)


def image_uri(framework_version: str, scope: str, instance_type: str, py_version: str | None = None) -> str:
    """The AWS TensorFlow image (`scope` "training" or "inference") for this region and instance type."""
    return _sdk().image_uris.retrieve("tensorflow", boto3.Session().region_name, version=framework_version,
                               instance_type=instance_type, image_scope=scope, py_version=py_version)


def estimator(training: TrainingJobSettings, role: str, bucket: str, output_path: str, hyperparameters: dict,
              source_dir: str | None):
    """A script-mode TensorFlow estimator (`source_dir` given) or one on our own image (`training.image`)."""
    sdk = _sdk()
    common = dict(role=role, instance_type=training.instance_type, instance_count=training.instance_count,
                  output_path=output_path, hyperparameters=hyperparameters, sagemaker_session=session(bucket),
                  use_spot_instances=training.spot, max_run=60 * training.max_run_minutes,
                  max_wait=60 * training.max_wait_minutes if training.spot else None,
                  metric_definitions=[{"Name": name, "Regex": rf"metrics .*\b{name}=([0-9.eE+-]+)"}
                                      for name in ("loss", "accuracy", "val_loss", "val_accuracy")],
                  disable_profiler=True, debugger_hook_config=False)
    if source_dir:
        from sagemaker.tensorflow import TensorFlow

        return TensorFlow(entry_point="train.py", source_dir=source_dir,
                          framework_version=training.framework_version,
                          py_version=training.py_version, **common)
    return sdk.estimator.Estimator(image_uri=training.image, **common)
