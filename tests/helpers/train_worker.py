"""One training worker, as a process of its own: `python train_worker.py JOB.json`, with TF_CONFIG in its
environment. Trains with `training.fine_tune` (base.json's settings with the job's dotted changes) under the
plan `distribution.plan` makes, then writes what the tests compare (history, plan, every weight) to
`JOB.json`'s `out` folder, as worker-<index>.{json,npz}."""
import json
import sys
from pathlib import Path

import numpy as np

import emoji_reco  # noqa: F401  (Keras 2 before TensorFlow)
from emoji_reco.model import distribution, training
from emoji_reco.settings import defaults, typed, with_overrides


def main(job_file: str) -> int:
    job = json.loads(Path(job_file).read_text())
    settings = typed(with_overrides(defaults(), job["settings"]))
    plan = distribution.plan(settings.train)
    print("fitting", flush=True)
    model, history, _ = training.fine_tune(job["files"], sum(job["per_file"]["train"]), job["emojis"],
                                           job["base_dir"], settings, plan=plan, per_file=job["per_file"])
    out = Path(job["out"])
    np.savez(out / f"worker-{plan.worker_index}.npz", *[w.numpy() for w in model.weights])
    (out / f"worker-{plan.worker_index}.json").write_text(json.dumps({"history": history,
                                                                      "plan": plan.describe()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
