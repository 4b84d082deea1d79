"""The int8 inference image against the full one: no TensorFlow in it, a fraction of the size, up sooner, and
the same answers as the full image serving the same int8 form; what it says of a bundle it can't serve."""
import json
import shutil
import subprocess
import time

import httpx
import pytest

from emoji_reco.model import int8
from helpers import containers
from helpers.datasets import SAMPLE_TEXTS
from helpers.serving import running

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
MAX_MB = 600  # issue 40's bound; bench/RESULTS.md has the sizes and cold starts measured side by side


def size_mb(image: str) -> float:
    done = subprocess.run([containers.engine(), "image", "inspect", "--format", "{{.Size}}", image],
                          capture_output=True, text=True, check=True)
    return int(done.stdout) / 1e6


def cold_start(image: str, model, **environment) -> float:
    """Seconds from `run` to /ping 200."""
    began = time.monotonic()
    with containers.serving(image, model, **environment):
        return time.monotonic() - began


def answer(url: str, asked: dict) -> dict:
    """The reply but its version (a bundle's folder name on the host, "model" in /opt/ml/model)."""
    reply = httpx.post(f"{url}/invocations", json=asked).json()
    return {k: v for k, v in reply.items() if k != "version"}


def test_the_int8_image_has_no_tensorflow_and_is_a_fraction_of_the_full_image(
        inference_int8_image, inference_image):
    assert size_mb(inference_int8_image) < min(MAX_MB, size_mb(inference_image) / 3)
    probe = containers.run("--entrypoint", "python", inference_int8_image, "-c", "import tensorflow")
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr


def test_it_answers_and_explains_as_the_full_image_serving_int8_and_starts_sooner(
        inference_int8_image, inference_image, tiny_bundle):
    folder = tiny_bundle[1]
    asked = {"instances": SAMPLE_TEXTS, "explain": True}
    with running(model=str(folder), runtime="int8") as (url, _):
        host = answer(url, asked)
    answers = {}
    for image, environment in ((inference_int8_image, {}), (inference_image, {"EMOJI_RECO_RUNTIME": "int8"})):
        with containers.serving(image, folder, **environment) as (url, _):
            assert httpx.get(f"{url}/ping").json()["runtime"] == "litert_int8"
            answers[image] = answer(url, asked)
    assert answers[inference_int8_image] == answers[inference_image] == host
    assert len(host["predictions"]) == len(host["explanations"]) == len(SAMPLE_TEXTS)
    assert cold_start(inference_int8_image, folder) < cold_start(inference_image, folder)


def test_a_bundle_without_an_int8_form_is_named_by_ping_and_in_one_log_line(inference_int8_image, tiny_bundle,
                                                                           tmp_path):
    older = tmp_path / "older"
    shutil.copytree(tiny_bundle[1], older, ignore=shutil.ignore_patterns(int8.INT8_FILE))
    metadata = json.loads((older / "metadata.json").read_text())
    del metadata["forms"]
    (older / "metadata.json").write_text(json.dumps(metadata))
    with containers.serving(inference_int8_image, older, ping=503) as (url, name):
        ping = httpx.get(f"{url}/ping").json()
        assert "failed to load" in ping["error"]
        said = [line for line in containers.logs(name).splitlines() if "holds no int8 form" in line]
        assert said and "--runtime savedmodel or auto" in said[0]
        assert "Traceback" not in containers.logs(name)
