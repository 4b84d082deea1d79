"""The training image run as SageMaker runs a training job: `IMAGE train` with the job's /opt/ml mounted
(channels, hyperparameters, resourceconfig.json), no network unless the job has several hosts; what it writes
is read on the host."""
import time

import httpx
import pytest

from emoji_reco.data import demo
from emoji_reco.model import bundle
from helpers import containers
from helpers.datasets import SAMPLE_TEXTS
from helpers.network import consecutive_free_ports
from helpers.sagemaker_job import cluster_roots, opt_ml
from helpers.serving import running

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def job(root, model_dir, *args: str, model_volume: str | None = None) -> list[str]:
    """`run` arguments for a training job on `root` (an /opt/ml), the tiny base model at its host path."""
    (root / "output").mkdir(exist_ok=True)
    return ["-v", f"{root}/input:/opt/ml/input:ro", "--mount", model_volume
            or f"type=bind,src={root}/model,dst=/opt/ml/model",
            "-v", f"{root}/output:/opt/ml/output", "-v", f"{model_dir}:{model_dir}:ro", *args]


@pytest.fixture(scope="session")
def image_trained_bundle(train_image, tiny_model, tmp_path_factory):
    """A bundle the training image wrote as a one-instance job with no network: (folder, the job's output)."""
    root = opt_ml(tmp_path_factory.mktemp("job") / "ml", tiny_model)
    done = containers.run(*job(root, tiny_model, "--network", "none"), train_image, "train", check=True)
    return root / "model", done.stdout + done.stderr


def test_the_training_image_trains_a_job_offline_and_its_bundle_serves_on_the_host(image_trained_bundle):
    folder, output = image_trained_bundle
    assert "metrics epoch=1 " in output and "Traceback" not in output
    assert bundle.read_labels(folder) == demo.EMOJIS
    predictor = bundle.Predictor(folder)
    with running(model=str(folder)) as (url, _):
        served = httpx.post(f"{url}/invocations?k={len(demo.EMOJIS)}",
                            json=SAMPLE_TEXTS).json()["predictions"]
    probabilities = predictor.probabilities(SAMPLE_TEXTS)
    for row, answer in zip(probabilities, served):
        assert {p["emoji"]: p["probability"] for p in answer} == pytest.approx(
            {e: float(p) for e, p in zip(demo.EMOJIS, row)}, abs=1e-3)


def test_two_training_containers_are_one_two_instance_job_and_only_the_chief_writes(
        train_image, tiny_model, tmp_path):
    # SageMaker's host names, resolved to two loopback addresses of the host network
    hosts = ["algo-1", "algo-2"]
    roots = cluster_roots(tmp_path, tiny_model, hosts, consecutive_free_ports())
    network = ["--network", "host", "--add-host", "algo-1:127.0.0.1", "--add-host", "algo-2:127.0.0.2"]
    with containers.started(train_image, *job(roots[0], tiny_model, *network)) as (chief, _), \
            containers.started(train_image, *job(roots[1], tiny_model, *network)) as (worker, _):
        deadline = time.time() + 900
        while any(containers.state(c)["Running"] for c in (chief, worker)) and time.time() < deadline:
            time.sleep(1)
        logs = {c: containers.logs(c) for c in (chief, worker)}
        assert [containers.state(c)["ExitCode"] for c in (chief, worker)] == [0, 0], logs
    assert not any((roots[1] / "model").iterdir())  # one bundle, written by the chief
    metadata = bundle.read_metadata(roots[0] / "model")
    assert metadata["distribution"]["workers"] == 2 and metadata["distribution"]["replicas"] == 2
    assert all("metrics epoch=1 " in log for log in logs.values())  # both hosts trained


@pytest.mark.parametrize("fault, message", [
    ("missing channel", "No .tfrecord files in channel(s) ['validation']"),
    ("unreadable hyperparameters", "hyperparameters.json is not valid JSON"),
    ("no space left", "No space left on device"),
])
def test_a_failed_job_says_why_in_the_failure_file_and_exits_non_zero(
        train_image, tiny_model, tmp_path, fault, message):
    root = opt_ml(tmp_path / "ml", tiny_model, channels=("train",) if fault == "missing channel"
                  else ("train", "validation"))
    if fault == "unreadable hyperparameters":
        (root / "input" / "config" / "hyperparameters.json").write_text('{"settings": ')
    # too small a bundle
    small = "type=tmpfs,dst=/opt/ml/model,tmpfs-size=1m" if fault == "no space left" else None
    done = containers.run(*job(root, tiny_model, "--network", "none", model_volume=small), train_image,
                          "train")
    assert done.returncode != 0
    failure = (root / "output" / "failure").read_text()
    assert message in failure.splitlines()[0], failure[-2000:]
