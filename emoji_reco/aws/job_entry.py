"""The training entry point of our training image, on SageMaker's training contract.

Reads `/opt/ml/input/config/hyperparameters.json` (`settings`: the flow's settings as JSON, or only what
differs from `config/base.json`; `emojis`: the label list as JSON; optionally `provenance`, what the bundle's
metadata says of its run and data; each may be JSON-encoded once more, as the SDK's script mode does), the
TFRecords of the `train` and `validation` channels under `/opt/ml/input/data/<channel>/`, and writes the model
bundle to `/opt/ml/model` (on a job of several instances, `resourceconfig.json` makes them workers of one
training, and the first host, the chief, writes it). A failure is written to `/opt/ml/output/failure`, as
SageMaker expects. `$EMOJI_RECO_OPT_ML` moves the root (for tests).
"""
import json
import os
import sys
import traceback
from pathlib import Path

CHANNELS = ("train", "validation")


def hyperparameter(hyperparameters: dict, name: str):
    """A JSON hyperparameter, whether SageMaker passes it as JSON text or as a JSON-encoded string of it."""
    if name not in hyperparameters:
        raise KeyError(f"Hyperparameter {name!r} is missing (have {sorted(hyperparameters)}).")
    value = json.loads(hyperparameters[name])
    return json.loads(value) if isinstance(value, str) else value


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path} is missing: SageMaker writes it from the job's "
                                f"hyperparameters.") from exc
    except ValueError as exc:
        raise ValueError(f"{path.name} is not valid JSON ({exc}): {path}") from exc


def main() -> int:
    root = Path(os.environ.get("EMOJI_RECO_OPT_ML", "/opt/ml"))
    try:
        import emoji_reco  # noqa: F401  (Keras 2 before TensorFlow)
        from emoji_reco.model import distribution, tfrecords, training
        from emoji_reco.settings import defaults, merge, typed

        hyperparameters = _read_json(root / "input" / "config" / "hyperparameters.json")
        given, emojis = (hyperparameter(hyperparameters, name) for name in ("settings", "emojis"))
        settings = typed(merge(defaults(), given))
        cluster = distribution.sagemaker_tf_config(root, settings.train.distribution.port)
        if cluster and "TF_CONFIG" not in os.environ:  # a job of several hosts trains one model across them
            os.environ["TF_CONFIG"] = json.dumps(cluster)
        data = root / "input" / "data"
        records = [{"uri": str(path), "split": channel, "records": tfrecords.count(str(path))}
                   for channel in CHANNELS for path in sorted((data / channel).rglob("*.tfrecord"))]
        missing = [c for c in CHANNELS if not any(r["split"] == c for r in records)]
        if missing:
            raise FileNotFoundError(f"No .tfrecord files in channel(s) {missing} under {data}.")
        provenance = hyperparameter(hyperparameters, "provenance") if "provenance" in hyperparameters else {}
        result = training.train_bundle(records, emojis, settings, str(root / "model"),
                                       {"run": os.environ.get("TRAINING_JOB_NAME", ""), **provenance})
        for epoch in result["history"]:  # one line per epoch, for SageMaker metric definitions
            print("metrics " + " ".join(f"{k}={v}" for k, v in epoch.items()), flush=True)
        return 0
    except Exception as exc:
        (root / "output").mkdir(parents=True, exist_ok=True)
        (root / "output" / "failure").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        print(f"training failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
