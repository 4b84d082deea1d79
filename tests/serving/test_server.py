"""The inference server as a client sees it: a real uvicorn server on 127.0.0.1 with the tiny model."""
import asyncio
import io
import json
import shutil
import tarfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from emoji_reco.data import demo
from emoji_reco.errors import ModelError
from emoji_reco.serving.batching import MicroBatcher
from emoji_reco.serving.local_endpoint import LocalEndpoint
from emoji_reco.serving.sources import FixedSource, extract
from helpers import examples
from helpers.serving import SERVED_FORMS, post, running, wait_ready

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tiny_bundle, runtime):
    _, folder = tiny_bundle
    # These tests send one bad request after another on purpose: no refusal budget (tested on its own).
    with running(model=str(folder), runtime=runtime, max_texts=8, max_body_bytes=4096,
                 max_refusals_per_client_s=0) as (url, parts):
        assert wait_ready(url)["runtime"] == SERVED_FORMS[runtime]
        yield url, parts


@pytest.mark.parametrize("body, content_type, n", [
    (["so hyped for tonight", "ugh monday"], "application/json", 2),
    ({"instances": ["a", "b", "c"]}, "application/json", 3),
    ({"inputs": "just one"}, "application/json", 1),
    ([{"text": "object items"}], "application/json", 1),
    (b"line one\n\nline two\n", "text/plain", 2),
    (b"text\nfirst,x\n\"second, with comma\",y\n", "text/csv; charset=utf-8; header=present", 2),
    (b"\r%\xc2\xa4a\rsecond\r\nthird", "text/csv", 3),  # any line ending, a lone \r too (found by fuzzing)
])
def test_every_request_format_gets_top_emojis(server, body, content_type, n):
    url, _ = server
    answer = post(url, body, content_type)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == n
    for p in predictions:
        assert len(p) == 3 and all(e["emoji"] in demo.EMOJIS for e in p)
        assert p[0]["probability"] >= p[1]["probability"] >= p[2]["probability"]


def test_explain_adds_the_words_behind_each_emoji_and_the_default_answer_is_unchanged(server):
    url, parts = server
    plain = post(url, ["monday again", "so hyped"]).json()
    assert set(plain) == {"version", "predictions"}  # no explanations unless asked
    explained = post(url, {"instances": ["monday again", "so hyped"], "explain": True},
                     params={"k": 2}).json()
    assert explained["predictions"] == [p[:2] for p in plain["predictions"]]
    for text, answer, why in zip(["monday again", "so hyped"], explained["predictions"],
                                 explained["explanations"]):
        assert [e["emoji"] for e in why["emojis"]] == [a["emoji"] for a in answer]
        assert all(w["word"] in text.split() and isinstance(w["weight"], float) for e in why["emojis"]
                   for w in e["words"])


def test_k_and_raw_logits(server):
    url, _ = server
    assert len(post(url, ["hi"], params={"k": 5}).json()["predictions"][0]) == 5
    assert len(post(url, ["hi"], headers={"X-Top-K": "1"}).json()["predictions"][0]) == 1
    raw = post(url, ["hi", "there"], params={"raw": "logits"}).json()
    assert raw["labels"] == demo.EMOJIS and len(raw["logits"]) == 2 and len(raw["logits"][0]) == 10


@pytest.mark.parametrize("body, content_type, status, message", [
    (b"[not json", "application/json", 400, "Malformed JSON"),
    (b"<a/>", "application/xml", 415, "Unsupported content type"),
    (b"\xff\xfe\xfa", "text/plain", 400, "not valid UTF-8"),
    (b"[]", "application/json", 400, "No texts"),
    (b'["ok", 3]', "application/json", 400, "texts[1] is int"),
    (b'{"text": "x"}', "application/json", 400, "instances"),
    (json.dumps({"instances": ["", "ok", " ", "\x00\x07", "@someone"]}).encode(), "application/json", 400,
     "instances[0], instances[2], instances[3], instances[4] are empty"),
    (b"fine\n\x01\x02\n", "text/plain", 400, "texts[1] is empty"),
    (json.dumps(["x"] * 9).encode(), "application/json", 400, "Too many texts"),
    (json.dumps(["x" * 5000]).encode(), "application/json", 413, "over the 4096-byte limit"),
])
def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(
        server, body, content_type, status, message):
    url, _ = server
    answer = post(url, body, content_type)
    assert answer.status_code == status and message in answer.json()["error"]
    assert post(url, ["still here"]).status_code == 200


def test_bad_k_and_chunked_oversized_bodies(server):
    url, _ = server
    assert post(url, ["x"], params={"k": 11}).status_code == 400
    assert post(url, ["x"], params={"k": "many"}).status_code == 400
    chunks = (b'["' + b"y" * 1000 for _ in range(6))  # no Content-Length: the limit holds while streaming
    answer = httpx.post(f"{url}/invocations", content=chunks, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_over_long_texts_are_truncated_not_refused(server):
    url, _ = server
    assert post(url, ["word " * 700]).status_code == 200


def test_concurrent_requests_share_model_calls(server):
    url, parts = server
    before = parts.batcher.calls
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: post(url, [f"text {i}"] * 4), range(64)))
    assert all(a.status_code == 200 for a in answers)
    assert parts.batcher.calls - before < 64


def test_the_batcher_keeps_every_model_thread_busy_and_answers_each_request_its_own_rows():
    active, peak, calls, lock = 0, 0, [], threading.Lock()

    def predict(texts):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            calls.append(len(texts))
        time.sleep(0.2)
        with lock:
            active -= 1
        return [t.upper() for t in texts]

    async def ask(requests, max_batch):
        batcher = MicroBatcher(predict, max_batch=max_batch, threads=2)
        await batcher.start()
        try:
            return await asyncio.wait_for(asyncio.gather(*(batcher.submit(r) for r in requests)), 10)
        finally:
            await batcher.stop()

    # A request that doesn't fit the first call goes to the idle thread at once, not after that call.
    assert asyncio.run(ask([["a"], ["b", "c"]], max_batch=2)) == [["A"], ["B", "C"]]
    assert peak == 2 and calls == [1, 2]
    calls.clear()
    requests = [[f"t{i}"] * (1 + i % 3) for i in range(30)]
    assert asyncio.run(ask(requests, max_batch=4)) == [[t.upper() for t in r] for r in requests]
    assert max(calls) <= 4 and len(calls) < 30 and sum(calls) == sum(map(len, requests))


def test_ping_waits_for_a_deploy_and_new_versions_are_picked_up_without_failing_requests(tiny_bundle):
    _, folder = tiny_bundle
    name = f"serve-{uuid.uuid4().hex[:6]}"
    with running(endpoint=name) as (url, _):
        ping = httpx.get(f"{url}/ping")
        assert ping.status_code == 503 and "No model loaded" in ping.json()["error"]
        assert post(url, ["x"]).status_code == 503
        endpoint = LocalEndpoint(name)
        endpoint.publish(folder, "v1", ["x"])
        assert wait_ready(url)["version"] == "v1"
        stop, results = threading.Event(), []

        def hammer():
            while not stop.is_set():
                results.append(post(url, ["keep going"], timeout=30))

        with ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(hammer)
            time.sleep(0.5)
            endpoint.publish(folder, "v2", ["x"])
            wait_ready(url, "v2")
            time.sleep(0.5)
            stop.set()
        assert results and all(r.status_code == 200 for r in results)
        assert {r.json()["version"] for r in results} == {"v1", "v2"}


def test_a_model_awaited_is_named_while_missing_in_one_log_line_and_served_once_it_appears(
        tiny_bundle, tmp_path, caplog):
    model = tmp_path / "model"
    with pytest.raises(ModelError, match=f"Model {model} not found"):  # required: the server refuses to start
        running(model=str(model)).__enter__()
    with running(model=str(model), wait_for_model=True) as (url, _):
        time.sleep(0.6)  # several checks
        ping = httpx.get(f"{url}/ping")
        assert ping.status_code == 503 and f"Model {model} not found" in ping.json()["error"]
        assert post(url, ["x"]).status_code == 503
        said = [r for r in caplog.records if f"Model {model} not found" in r.getMessage()]
        assert len(said) == 1 and not said[0].exc_info  # once, without a traceback
        shutil.copytree(tiny_bundle[1], model)
        wait_ready(url)
        assert post(url, ["now it answers"]).status_code == 200


def test_model_archives_are_extracted_safely(tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    good = tmp_path / "model.tar.gz"
    with tarfile.open(good, "w:gz") as archive:
        archive.add(folder, arcname=".")
    source = FixedSource(str(good))
    assert source.version() == "model.tar.gz" and (source.folder(source.version()) / "saved_model").is_dir()
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as archive:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(ModelError, match="Can't unpack"):
        extract(evil, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_fuzzing_the_openapi_description_finds_no_server_error(server):
    url, _ = server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/ping", "/invocations"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def no_server_error(case):
            case.call_and_validate(checks=[not_a_server_error])

        no_server_error()


def test_a_model_that_fails_to_load_is_reported_by_ping(tmp_path):
    broken = tmp_path / "broken"
    (broken / "saved_model").mkdir(parents=True)
    (broken / "metadata.json").write_text('{"max_length": 8}')
    with running(model=str(broken)) as (url, _):
        ping = httpx.get(f"{url}/ping")
        assert ping.status_code == 503 and "broken" in ping.json()["error"]
        assert post(url, ["x"]).status_code == 503


def test_a_bundle_from_a_newer_emoji_reco_is_refused_with_what_to_do(tmp_path, tiny_bundle, caplog):
    future = tmp_path / "future"
    shutil.copytree(tiny_bundle[1], future)
    metadata = json.loads((future / "metadata.json").read_text())
    (future / "metadata.json").write_text(json.dumps({**metadata, "format": 99}))
    with running(model=str(future)) as (url, _):
        assert "version future failed to load" in httpx.get(f"{url}/ping").json()["error"]
        assert post(url, ["x"]).status_code == 503
    assert ("is a format-99 model bundle; this emoji-reco reads formats up to "
            "2. Upgrade emoji-reco" in caplog.text)
