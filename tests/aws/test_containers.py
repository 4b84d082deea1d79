"""The entry points our images run (`serve`, `train`), as plain processes against an /opt/ml-shaped folder:
quick checks of their contract on the host. The images themselves are built and run in tests/containers."""
import contextlib
import shutil
import subprocess

import httpx
import pytest

from emoji_reco.data import demo
from emoji_reco.model import bundle
from helpers.flows import ROOT
from helpers.network import free_port
from helpers.sagemaker_job import env, opt_ml, run_train
from helpers.serving import metric, scrape, wait_serving

pytestmark = pytest.mark.timeout(600)
@contextlib.contextmanager
def entry_point(bundle_folder, tmp_path, **environment):
    """The inference image's `serve` as a plain process on the model SageMaker unpacked; yields its URL once
    /ping answers 200."""
    shutil.copytree(bundle_folder, tmp_path / "opt" / "ml" / "model")
    port = free_port()
    proc = subprocess.Popen([str(ROOT / "containers" / "inference" / "serve"), "serve"], env=env(
        EMOJI_RECO_MODEL_DIR=str(tmp_path / "opt" / "ml" / "model"), EMOJI_RECO_HOST="127.0.0.1",
        SAGEMAKER_BIND_TO_PORT=str(port), **environment), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_serving(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_inference_entry_point_serves_the_model_sagemaker_unpacked(tiny_bundle, tmp_path, workers):
    with entry_point(tiny_bundle[1], tmp_path, SAGEMAKER_MODEL_SERVER_WORKERS=str(workers)) as url:
        for _ in range(2 * workers):  # with several workers, each process answers on its own model
            answer = httpx.post(f"{url}/invocations", json=["hello from sagemaker"])
            assert answer.status_code == 200 and answer.json()["predictions"][0][0]["emoji"] in demo.EMOJIS
        for _ in range(3):  # whichever worker answers the scrape counts every worker's requests
            assert metric(scrape(url), "emoji_reco_requests_total", route="/invocations",
                          status="200") == 2 * workers


def _records(n: int) -> list[str]:
    """n different tweets of ~130 bytes, some with commas and quotes (CSV must quote them)."""
    return [f'tweet {i}: "so" happy, so tired, what a day at the beach {i % 97} and nothing else to do today'
            for i in range(n)]


def test_batch_transform_mini_batches_of_max_payload_get_one_line_per_record_in_order(tiny_bundle, tmp_path):
    """What Batch Transform sends with SplitType=Line, BatchStrategy=MultiRecord, MaxPayloadInMB=1: as many
    lines as fit in 1 MB, as CSV or JSON Lines; each answer line is what that record alone gets from the same
    model."""
    import csv
    import io
    import json

    records = _records(10500)
    csv_body = "".join(f'"{r.replace(chr(34), 2 * chr(34))}"\n' for r in records).encode()
    assert 0.8 * 2**20 < len(csv_body) <= 2**20
    with entry_point(tiny_bundle[1], tmp_path, SAGEMAKER_BATCH="true", SAGEMAKER_MAX_PAYLOAD_IN_MB="1",
                     SAGEMAKER_BATCH_STRATEGY="MULTI_RECORD") as url:
        assert httpx.get(f"{url}/execution-parameters").json()["BatchStrategy"] == "MULTI_RECORD"
        alone = [httpx.post(f"{url}/invocations",
                            json=[records[i]]).json()["predictions"][0] for i in (0, 4321, 10499)]
        answer = httpx.post(f"{url}/invocations", content=csv_body, timeout=300,
                            headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        assert answer.status_code == 200, answer.text[:300]
        rows = list(csv.reader(io.StringIO(answer.text)))
        assert len(rows) == len(records) and answer.text.count("\n") == len(records)
        for i, expected in zip((0, 4321, 10499), alone):
            assert rows[i] == [str(v) for p in expected for v in (p["emoji"], p["probability"])]
        lines = "\n".join(json.dumps({"text": r} if i % 2 else r) for i, r in enumerate(records[:3000]))
        answer = httpx.post(f"{url}/invocations", content=lines.encode(), timeout=300,
                            headers={"Content-Type": "application/jsonlines",
                                     "Accept": "application/jsonlines"})
        assert answer.status_code == 200, answer.text[:300]
        out = [json.loads(line) for line in answer.text.splitlines()]
        assert len(out) == 3000 and out[0]["predictions"] == [alone[0]]
    with entry_point(tiny_bundle[1], tmp_path / "online") as url:  # an endpoint keeps its online limits
        online = httpx.post(f"{url}/invocations", content=csv_body, headers={"Content-Type": "text/csv"})
        assert online.status_code == 400 and "at most 256" in online.json()["error"]


def test_the_training_entry_point_follows_the_sagemaker_training_contract(tiny_model, tmp_path):
    root = opt_ml(tmp_path / "ml", tiny_model)
    result = run_train(root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "metrics epoch=1" in result.stdout
    assert (root / "model" / "saved_model" / "saved_model.pb").is_file()
    assert bundle.read_labels(root / "model") == demo.EMOJIS
    assert bundle.Predictor(root / "model").logits(["does it answer"]).shape == (1, len(demo.EMOJIS))
    # Settings name only what differs from the defaults; the rest (the n-gram half among it) comes from
    # base.json.
    assert bundle.Predictor(root / "model").parts(["and in parts"])["ngram"].shape == (1, len(demo.EMOJIS))


def test_a_training_failure_is_written_where_sagemaker_reads_it(tiny_model, tmp_path):
    root = opt_ml(tmp_path / "ml", tiny_model, channels=("train",))
    result = run_train(root)
    assert result.returncode == 1
    assert "No .tfrecord files in channel(s) ['validation']" in (root / "output" / "failure").read_text()
