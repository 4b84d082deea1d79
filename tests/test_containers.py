"""The entry points our images run (`serve`, `train`), as plain processes against an /opt/ml-shaped folder.
No Docker engine here: the Dockerfiles are linted (hadolint, in `make test`), their entry points tested."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, free_port
from emoji_reco import bundle, demo_data, tfrecords, tokenization

pytestmark = pytest.mark.timeout(600)
def env(**extra) -> dict:
    """This process's environment (as it is now: tests may point AWS at moto), with our venv's bin on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **extra}


@pytest.mark.parametrize("workers", [1, 2])
def test_the_inference_entry_point_serves_the_model_sagemaker_unpacked(tiny_bundle, tmp_path, workers):
    _, folder = tiny_bundle
    shutil.copytree(folder, tmp_path / "opt" / "ml" / "model")
    port = free_port()
    environment = env(EMOJI_RECO_MODEL_DIR=str(tmp_path / "opt" / "ml" / "model"), EMOJI_RECO_HOST="127.0.0.1",
                      SAGEMAKER_BIND_TO_PORT=str(port), SAGEMAKER_MODEL_SERVER_WORKERS=str(workers))
    proc = subprocess.Popen([str(ROOT / "containers" / "inference" / "serve"), "serve"], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping").status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.3)
        for _ in range(2 * workers):  # with several workers, each process answers on its own model
            answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=["hello from sagemaker"])
            assert answer.status_code == 200 and answer.json()["predictions"][0][0]["emoji"] in demo_data.EMOJIS
    finally:
        proc.terminate()
        proc.wait(30)


def opt_ml(root: Path, model_dir: Path, channels=("train", "validation")) -> Path:
    """An /opt/ml as SageMaker lays it out for a training job: hyperparameters and TFRecord channels."""
    splits = {name: demo_data.demo_tweets(200, seed=i).assign(label=lambda f: f.LABEL.map(demo_data.EMOJIS.index))
              .rename(columns={"TWEET": "text"}) for i, name in enumerate(channels)}
    tok = tokenization.save_fast_tokenizer(model_dir, root / "tok")
    for written in tfrecords.convert_shard(splits, 0, 1, tok, 32, 64, str(root / "records")):
        channel = root / "input" / "data" / written["split"]
        channel.mkdir(parents=True, exist_ok=True)
        shutil.copy(written["uri"], channel)
    settings = {"model": {"base": str(model_dir), "max_length": 32},
                "train": {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "warmup_fraction": 0.1,
                          "weight_decay": 0.01, "bucket_boundaries": [8, 16], "seed": 1}}
    (root / "input" / "config").mkdir(parents=True)
    # As the SDK's script mode writes them: every value JSON-encoded (our own image gets the JSON text as is).
    hyperparameters = {"settings": json.dumps(json.dumps(settings)), "emojis": json.dumps(json.dumps(demo_data.EMOJIS))}
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (root / "model").mkdir()
    return root


def run_train(root: Path):
    return subprocess.run([str(ROOT / "containers" / "train" / "train"), "train"], capture_output=True, text=True,
                          env=env(EMOJI_RECO_OPT_ML=str(root)), timeout=500)


def test_the_training_entry_point_follows_the_sagemaker_training_contract(tiny_model, tmp_path):
    root = opt_ml(tmp_path / "ml", tiny_model)
    result = run_train(root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "metrics epoch=1" in result.stdout
    assert (root / "model" / "saved_model" / "saved_model.pb").is_file()
    assert bundle.read_labels(root / "model") == demo_data.EMOJIS
    assert bundle.Predictor(root / "model").top_k(["does it answer"])[0][0]["emoji"] in demo_data.EMOJIS


def test_a_training_failure_is_written_where_sagemaker_reads_it(tiny_model, tmp_path):
    root = opt_ml(tmp_path / "ml", tiny_model, channels=("train",))
    result = run_train(root)
    assert result.returncode == 1
    assert "No .tfrecord files in channel(s) ['validation']" in (root / "output" / "failure").read_text()
