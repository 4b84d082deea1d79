"""The inference image run as SageMaker runs it: `IMAGE serve`, the model read-only in /opt/ml/model, port
8080 published on 127.0.0.1, a read-only root filesystem; its answers against the host's server on the same
bundle."""
import csv
import io
import json
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from emoji_reco.data import demo
from emoji_reco.model import bundle
from emoji_reco.serving import payloads
from helpers import containers
from helpers.datasets import SAMPLE_TEXTS
from helpers.serving import SERVED_FORMS, running

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ALL = f"?k={len(demo.EMOJIS)}"


def host_answers(folder, texts: list[str], runtime: str = "savedmodel") -> list:
    with running(model=str(folder), runtime=runtime) as (url, _):
        return httpx.post(f"{url}/invocations{ALL}", json=texts).json()["predictions"]


def records(n: int) -> list[str]:
    """n different tweets, some with commas and quotes (CSV must quote them)."""
    return [f'tweet {i}: "so" happy, so tired, a day at the beach {i % 97}' for i in range(n)]


def test_the_image_serves_as_the_host_does_as_a_non_root_user_on_a_read_only_root(
        serving_image, tiny_bundle):
    image, runtime = serving_image
    expected = host_answers(tiny_bundle[1], SAMPLE_TEXTS, runtime)
    with containers.serving(image, tiny_bundle[1]) as (url, name):
        assert httpx.get(f"{url}/ping").json()["runtime"] == SERVED_FORMS[runtime]
        assert httpx.post(f"{url}/invocations{ALL}", json=SAMPLE_TEXTS).json()["predictions"] == expected
        user = subprocess.run([containers.engine(), "exec", name, "id", "-u"], capture_output=True, text=True)
        assert user.stdout.strip() == "1000"
        write = subprocess.run([containers.engine(), "exec", name, "touch", "/opt/venv/x"],
                               capture_output=True,
                               text=True)
        assert write.returncode != 0 and "Read-only file system" in write.stderr


@pytest.mark.parametrize("image, environment", [
    ("inference_image", {"SAGEMAKER_MODEL_SERVER_WORKERS": 2}),
    ("inference_int8_image", {}),  # the int8 runtime's default: one process per core
])
def test_two_workers_each_answer(request, image, environment, tiny_bundle):
    """Two server processes: concurrent requests on their own connections reach both (the access log names
    the process that answered each); rounds of 32 until both have answered, 10 at most."""
    if not environment and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core here: the int8 image runs one process")
    with containers.serving(request.getfixturevalue(image), tiny_bundle[1], **environment) as (url, name):
        answered, sent = set(), 0
        with ThreadPoolExecutor(8) as pool:
            while len(answered) < 2 and sent < 320:
                statuses = list(pool.map(lambda i: httpx.post(f"{url}/invocations",
                                                              json=[f"text {i}"]).status_code,
                                         range(sent, sent + 32)))
                assert statuses == [200] * 32
                sent += 32
                answered = set(re.findall(r"\[(\d+)\] emoji_reco\.serving\.access INFO POST /invocations 200",
                                          containers.logs(name)))
        assert len(answered) == 2, f"{sent} requests, answered by {sorted(answered)}"


def test_batch_transform_mini_batches_get_one_line_per_record_in_order(serving_image, tiny_bundle):
    image, runtime = serving_image
    texts = records(3000)
    texts[0] = texts[2000] = "text"  # a record, not a header
    texts[999] = ""  # unscorable: answered as such, in its place
    body = "".join(f'"{t.replace(chr(34), 2 * chr(34))}"\n' for t in texts).encode()
    alone = host_answers(tiny_bundle[1], [texts[0], texts[1234], texts[-1]], runtime)
    with containers.serving(image, tiny_bundle[1], SAGEMAKER_BATCH="true",
                            SAGEMAKER_MAX_PAYLOAD_IN_MB="1",
                            SAGEMAKER_BATCH_STRATEGY="MULTI_RECORD") as (url, _):
        answer = httpx.post(f"{url}/invocations{ALL}", content=body, timeout=300,
                            headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        assert answer.status_code == 200, answer.text[:300]
        rows = list(csv.reader(io.StringIO(answer.text)))
        assert len(rows) == len(texts) and rows[999] == ["ERROR", payloads.UNSCORABLE]
        for i, expected in zip((0, 1234, len(texts) - 1), alone):
            assert rows[i] == [str(v) for p in expected for v in (p["emoji"], p["probability"])]
        lines = "\n".join(json.dumps({"text": t}) for t in texts).encode()
        answer = httpx.post(f"{url}/invocations{ALL}", content=lines, timeout=300,
                            headers={"Content-Type": "application/jsonlines",
                                     "Accept": "application/jsonlines"})
        out = [json.loads(line) for line in answer.text.splitlines()]
        assert len(out) == len(texts) and out[999]["error"] == payloads.UNSCORABLE
        assert [out[i]["predictions"][0] for i in (0, 1234, len(texts) - 1)] == alone


def test_sigterm_finishes_the_request_in_flight_and_exits_zero(serving_image, tiny_bundle):
    """As SageMaker stops a container (a scale-in, a finished transform job): SIGTERM, then SIGKILL after a
    grace."""
    with containers.serving(serving_image[0], tiny_bundle[1], SAGEMAKER_BATCH="true",
                            SAGEMAKER_MAX_PAYLOAD_IN_MB="4",
                            SAGEMAKER_BATCH_STRATEGY="MULTI_RECORD") as (url, name):
        answers = []
        client = threading.Thread(target=lambda: answers.append((httpx.post(
            f"{url}/invocations", content="\n".join(records(40000)).encode(), timeout=120,
            headers={"Content-Type": "text/csv"}), time.monotonic())))
        client.start()
        time.sleep(0.5)  # the mini-batch is in the server, being scored
        stopped_at = time.monotonic()
        stop = subprocess.run([containers.engine(), "stop", "-t", "60", name], capture_output=True, text=True)
        took = time.monotonic() - stopped_at
        client.join(120)
        assert stop.returncode == 0, stop.stderr
        (answer, answered_at), = answers
        assert answered_at > stopped_at  # still in flight when SIGTERM came
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 40000
        assert containers.state(name)["ExitCode"] == 0 and took < 60
        assert "Finished server process" in containers.logs(name)


def test_without_a_model_ping_says_what_is_missing_and_the_server_stays_up(serving_image, tmp_path):
    empty = tmp_path / "model"
    empty.mkdir()
    with containers.serving(serving_image[0], empty, ping=503) as (url, name):
        time.sleep(5)
        ping = httpx.get(f"{url}/ping")
        assert ping.status_code == 503 and "No model bundle in /opt/ml/model" in ping.json()["error"]
        assert containers.state(name)["Running"]
        missing = [line for line in containers.logs(name).splitlines() if "No model bundle "
                                                                          "in /opt/ml/model" in line]
        # said once by each server process (the int8 image runs one per core), in one line, not every 2 s
        said_by = [re.search(r" \[(\d+)\] ", line).group(1) for line in missing]
        assert missing and len(said_by) == len(set(said_by)) and "Traceback" not in containers.logs(name)


def test_bundles_trained_in_every_precision_answer_in_the_image_as_on_the_host(
        inference_image, precision_bundles):
    """train → bundle → predict, on the host and in the image, for float32, mixed_bfloat16 and
    mixed_float16."""
    mounts = [arg for p, (folder, _) in precision_bundles.items() for arg in ("-v",
                                                                              f"{folder}:/bundles/{p}:ro")]
    subprocess.run(["chmod", "-R", "a+rX", *(str(folder) for folder, _ in precision_bundles.values())],
                   check=True)
    script = ("import json, sys; from emoji_reco.model.bundle import Predictor; "
              "print(json.dumps({p: Predictor('/bundles/' + "
              "p).probabilities(json.loads(sys.argv[1])).tolist() "
              f"for p in {sorted(precision_bundles)!r}}}))")
    done = containers.run("--read-only", "--entrypoint", "python", *mounts, inference_image, "-c", script,
                          json.dumps(SAMPLE_TEXTS), check=True)
    in_image = json.loads(done.stdout.strip().splitlines()[-1])
    for precision, (folder, _) in precision_bundles.items():
        np.testing.assert_allclose(in_image[precision], bundle.Predictor(folder).probabilities(SAMPLE_TEXTS),
                                   atol=1e-6)
