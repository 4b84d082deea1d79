"""The entry points our images run (`serve`, `train`), as plain processes against an /opt/ml-shaped folder.
No Docker engine here: the Dockerfiles are linted (hadolint, in `make test`), their entry points tested."""
import shutil
import subprocess
import time

import httpx
import pytest

from emoji_reco.data import demo
from emoji_reco.model import bundle
from helpers.flows import ROOT
from helpers.network import free_port
from helpers.sagemaker_job import env, opt_ml, run_train

pytestmark = pytest.mark.timeout(600)
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
            assert answer.status_code == 200 and answer.json()["predictions"][0][0]["emoji"] in demo.EMOJIS
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_training_entry_point_follows_the_sagemaker_training_contract(tiny_model, tmp_path):
    root = opt_ml(tmp_path / "ml", tiny_model)
    result = run_train(root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "metrics epoch=1" in result.stdout
    assert (root / "model" / "saved_model" / "saved_model.pb").is_file()
    assert bundle.read_labels(root / "model") == demo.EMOJIS
    assert bundle.Predictor(root / "model").logits(["does it answer"]).shape == (1, len(demo.EMOJIS))
    # Settings name only what differs from the defaults; the rest (the n-gram half among it) comes from base.json.
    assert bundle.Predictor(root / "model").parts(["and in parts"])["ngram"].shape == (1, len(demo.EMOJIS))


def test_a_training_failure_is_written_where_sagemaker_reads_it(tiny_model, tmp_path):
    root = opt_ml(tmp_path / "ml", tiny_model, channels=("train",))
    result = run_train(root)
    assert result.returncode == 1
    assert "No .tfrecord files in channel(s) ['validation']" in (root / "output" / "failure").read_text()
