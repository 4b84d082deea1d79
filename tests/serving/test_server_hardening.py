"""The inference server under overload, faults and hostile input: bounded admission with 503 + Retry-After,
deadlines, abandoned requests dropped before the model, refusals of foreign pages, errors that leak nothing,
and a reload loop that survives a broken pointer or version. Real uvicorn servers on 127.0.0.1, the tiny
model."""
import base64
import importlib.util
import json
import os
import shutil
import tarfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from unittest import mock

import httpx
import pytest

from emoji_reco.aws import http_front, tfserving
from emoji_reco.model.bundle import Predictor
from emoji_reco.serving import payloads
from emoji_reco.serving.local_endpoint import POINTER, LocalEndpoint
from emoji_reco.serving.served_model import Loaded
from helpers.serving import exchange, metric, post, running, scrape, wait_ready

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def folder(tiny_bundle):
    return tiny_bundle[1]


def slow_model(parts, seconds):
    """Make each model call of the server take `seconds` longer; returns the texts the model was given."""
    batcher, seen = parts.batcher, []
    real = batcher.predict

    def slow(texts):
        seen.extend(texts)
        time.sleep(seconds)
        return real(texts)

    batcher.predict = slow
    return seen


def timed_post(url, body, **kwargs):
    began = time.perf_counter()
    answer = post(url, body, timeout=30, **kwargs)
    return answer, time.perf_counter() - began


def test_overload_is_refused_at_once_with_503_and_retry_after_and_the_server_recovers(folder, runtime):
    with running(model=str(folder), runtime=runtime, max_queued_texts=4, max_open_requests=8,
                 deadline_ms=20000) as (url, parts):
        wait_ready(url)
        seen = slow_model(parts, 1.0)
        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(lambda i: timed_post(url, [f"load {i}"]), range(24)))
        statuses = Counter(a.status_code for a, _ in answers)
        assert set(statuses) == {200, 503}, statuses
        for answer, seconds in answers:
            if answer.status_code == 503:
                assert answer.headers["retry-after"] == "1" and answer.json()["request_id"]
                assert seconds < 0.8, seconds  # refused at once, not after a model call (1 s)
        assert statuses[200] == len(seen) <= 2 + 4 + 2  # two calls running, the queue, and what they freed
        samples = scrape(url)
        shed = sum(metric(samples, "emoji_reco_shed_requests_total",
                          reason=r) for r in ("queue_full", "open_requests"))
        assert shed == statuses[503] == metric(samples, "emoji_reco_requests_total", route="/invocations",
                                               status="503")
        parts.batcher.predict = parts.model.predict
        assert httpx.get(f"{url}/ping").status_code == 200 and post(url,
                                                                    ["after the storm"]).status_code == 200


def test_a_request_past_its_deadline_gets_503_and_queued_texts_never_reach_the_model(folder, runtime):
    with running(model=str(folder), runtime=runtime, model_threads=1, deadline_ms=300) as (url, parts):
        wait_ready(url)
        seen = slow_model(parts, 0.8)
        with ThreadPoolExecutor(6) as pool:
            busy = pool.submit(timed_post, url, ["occupies the model"])
            time.sleep(0.1)
            answers = [busy, *(pool.submit(timed_post, url, [f"late {i}"]) for i in range(5))]
            answers = [a.result() for a in answers]
        assert all(a.status_code == 503 and "No answer within 300 "
                                            "ms" in a.json()["error"] for a, _ in answers)
        assert all(seconds < 0.75 for _, seconds in answers)  # answered at the deadline, not after the model
        time.sleep(1.0)  # the running call finishes; the batcher then finds only expired requests
        assert seen == ["occupies the model"] and sum(parts.batcher.dropped.values()) == 5
        samples = scrape(url)
        assert metric(samples, "emoji_reco_shed_requests_total", reason="deadline") == 6
        assert sum(metric(samples, "emoji_reco_dropped_requests_total",
                          reason=r) for r in ("deadline", "gone")) == 5


def test_a_client_that_leaves_takes_its_texts_out_of_the_queue(folder, runtime):
    with running(model=str(folder), runtime=runtime, model_threads=1) as (url, parts):
        wait_ready(url)
        seen = slow_model(parts, 1.0)
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(post, url, ["keeps the model busy"], timeout=30)
            time.sleep(0.2)
            with pytest.raises(httpx.ReadTimeout):
                post(url, ["gave up waiting"], timeout=0.3)
            assert busy.result().status_code == 200
        time.sleep(0.5)
        assert "gave up waiting" not in seen and parts.batcher.dropped["gone"] >= 1


@pytest.fixture(scope="module")
def fronts(folder, tmp_path_factory, runtime):
    """The same parser behind our server, the Lambda front and the TF Serving handlers."""
    root = tmp_path_factory.mktemp("tfs")
    with tarfile.open(tfserving.archive(folder, root / "model.tar.gz", "v1")) as tar:
        tar.extractall(root / "model", filter="data")
    spec = importlib.util.spec_from_file_location("tfs_inference_hardening", root / "model" / "code"
                                                  / "inference.py")
    tfs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tfs)
    predictor = Predictor(folder)

    class Runtime:  # what the Lambda forwards, scored by the real model as the endpoint would
        exceptions = SimpleNamespace(ClientError=RuntimeError)

        def invoke_endpoint(self, Body, **_):
            texts = json.loads(Body)
            answer = payloads.response(predictor.logits(texts).tolist(), predictor.emojis, 3, False, "v1")
            return {"Body": SimpleNamespace(read=lambda: json.dumps(answer).encode())}

    def via_lambda(body, ctype):
        event = {"headers": {"Content-Type": ctype}, "body": base64.b64encode(body).decode(),
                 "isBase64Encoded": True}
        with mock.patch.dict(os.environ, {"ENDPOINT_NAME": "emoji-reco"}):
            reply = http_front.handler(event, runtime=Runtime())
        rows = json.loads(reply["body"]).get("predictions")
        return reply["statusCode"], len(rows) if rows else None

    def via_tfserving(body, ctype):
        try:
            request = json.loads(tfs.input_handler(body, SimpleNamespace(request_content_type=ctype,
                                                                          custom_attributes="")))
        except tfs.payloads.BadRequest as exc:  # the archive's own copy of payloads.py
            return exc.status, None
        return 200, len(request["inputs"]["input_ids"])

    # every body is hostile
    with running(model=str(folder), runtime=runtime, max_texts=64, max_refusals_per_client_s=0) as (url, _):
        wait_ready(url)

        def via_server(body, ctype):
            answer = post(url, body, ctype)
            assert answer.headers["content-type"] == "application/json"
            return (answer.status_code, len(answer.json()["predictions"]) if answer.status_code == 200
                    else None)

        yield {"server": via_server, "lambda": via_lambda, "tfserving": via_tfserving}


@pytest.mark.parametrize("body, ctype, expected", [
    (b"[" * 1000, "application/json", (400, None)),
    (b'{"instances": ' + b"[" * 50000, "application/json", (400, None)),
    (b"[" * 100 + b'"x"' + b"]" * 100, "application/json", (400, None)),
    ("one\u2028still one\x85and\x0bthis\x0cand\x1cthis\rtoo\r\ntwo\n\nthree\n".encode(), "text/plain",
     (200, 3)),
    (b"\xff\xfe", "text/plain", (400, None)),
    (b"a,b\n", "text/xml", (415, None)),
])
def test_hostile_bodies_get_the_same_answer_from_every_front(fronts, body, ctype, expected):
    answers = {name: ask(body, ctype) for name, ask in fronts.items()}
    assert answers == dict.fromkeys(fronts, expected)
    assert fronts["server"](b'["still up"]', "application/json") == (200, 1)


@pytest.mark.parametrize("headers, status", [
    ({"Host": "evil.example"}, 403),  # DNS rebinding: a foreign name resolving to 127.0.0.1
    ({"Origin": "https://evil.example"}, 403),  # a web page the user visits, posting text/plain
    ({"Origin": "null"}, 403),
    ({}, 200),  # curl, SDKs, SageMaker: no Origin
])
def test_a_loopback_server_refuses_foreign_hosts_and_cross_site_pages(folder, headers, status, runtime):
    with running(model=str(folder), runtime=runtime) as (url, _):
        wait_ready(url)
        answer = post(url, b"hello", "text/plain", headers=headers)
        assert answer.status_code == status
        if status == 403:
            assert answer.json()["request_id"] == answer.headers["x-request-id"]
        same_origin = post(url, b"hi", "text/plain", headers={"Origin": url})  # the server's own web page
        assert same_origin.status_code == 200


def test_allowed_hosts_and_origins_open_the_server_for_a_real_deployment(folder, runtime):
    with running(model=str(folder), runtime=runtime, allowed_hosts=["emoji.example.com"],
                 allowed_origins=["https://app.example.com"]) as (url, _):
        ok = {"Host": "emoji.example.com", "Origin": "https://app.example.com"}
        # a fixed model loads before serving
        assert post(url, b"hi", "text/plain", headers=ok).status_code == 200
        assert post(url, b"hi", "text/plain",
                    headers={**ok, "Origin": "https://other.example"}).status_code == 403
        # Host 127.0.0.1 is no longer one of its names
        assert post(url, b"hi", "text/plain").status_code == 403


def test_errors_name_a_request_id_and_leak_no_detail(folder, tmp_path, runtime):
    broken = tmp_path / "secret-place" / "broken"
    (broken / "saved_model").mkdir(parents=True)
    (broken / "metadata.json").write_text('{"max_length": 8}')
    with running(model=str(broken)) as (url, _):
        ping = httpx.get(f"{url}/ping")
        assert ping.status_code == 503 and "secret-place" not in ping.text and str(tmp_path) not in ping.text
        assert "broken failed to load" in ping.json()["error"]
    with running(model=str(folder), runtime=runtime) as (url, parts):
        wait_ready(url)
        good = parts.model.current
        failing = SimpleNamespace(token_count=good.predictor.token_count, metadata=good.predictor.metadata)
        answers = []
        for predictor in (failing, object()):  # a model whose every call raises; then one that fails earlier
            parts.model.current = Loaded(predictor, "v-bad", good.emojis)
            try:
                answers.append(post(url, ["x"]))
            finally:
                parts.model.current = good
    for answer, message in zip(answers, ("The model failed on this request.", "The server failed "
                                                                              "on this request.")):
        assert answer.status_code == 500 and answer.json() == {
            "error": message, "request_id": answer.headers["x-request-id"]}


def test_the_reload_loop_survives_a_broken_pointer_and_retries_a_version_that_failed(folder):
    name = f"faults-{uuid.uuid4().hex[:6]}"
    endpoint = LocalEndpoint(name)
    endpoint.publish(folder, "v1", ["x"])
    with running(endpoint=name) as (url, _):
        assert wait_ready(url)["version"] == "v1"
        pointer = endpoint.root / POINTER
        good = pointer.read_text()
        for bad in ('{"version": "v', "", "[]"):  # half-written, empty, not a record
            pointer.write_text(bad)
            time.sleep(0.6)
            ping = httpx.get(f"{url}/ping")
            assert (ping.status_code == 200 and ping.json()["version"] == "v1"
                    and "can't be read" in ping.json()["problem"])
            assert post(url, ["still serving"]).json()["version"] == "v1"
        pointer.write_text(good)
        time.sleep(0.6)
        assert "problem" not in httpx.get(f"{url}/ping").json()
        # A version that fails to load is retried after a backoff, not pinned as failed for good.
        (endpoint.versions_dir / "v2" / "saved_model").mkdir(parents=True)
        pointer.write_text(json.dumps({"version": "v2", "previous": "v1"}))
        time.sleep(0.6)
        ping = httpx.get(f"{url}/ping").json()
        assert ping["version"] == "v1" and "v2 failed to load" in ping["problem"]
        shutil.rmtree(endpoint.versions_dir / "v2")
        shutil.copytree(folder, endpoint.versions_dir / "v2")
        assert wait_ready(url, "v2", timeout=30)["version"] == "v2"
        assert "problem" not in httpx.get(f"{url}/ping").json()


def test_the_openapi_description_states_the_servers_limits(folder, runtime):
    with running(model=str(folder), runtime=runtime, max_texts=5, max_body_bytes=999) as (url, _):
        spec = httpx.get(f"{url}/openapi.json").json()["paths"]["/invocations"]["post"]
    body = spec["requestBody"]
    assert "999 bytes" in body["description"]
    assert body["content"]["application/json"]["schema"]["oneOf"][0]["maxItems"] == 5
    assert {"403", "408", "429", "500", "503"} <= set(spec["responses"])


def test_many_slow_clients_do_not_grow_the_queue_past_its_bound(folder, runtime):
    with running(model=str(folder), runtime=runtime, max_queued_texts=8, max_open_requests=1000,
                 deadline_ms=20000) as (url, parts):
        wait_ready(url)
        slow_model(parts, 0.5)
        peak, stop = [0], threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], parts.batcher.queued)
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        with ThreadPoolExecutor(32) as pool:
            statuses = Counter(pool.map(lambda i: post(url, [f"q{i}", f"r{i}"], timeout=30).status_code,
                                        range(64)))
        stop.set()
        watcher.join()
        assert peak[0] <= 8 and set(statuses) == {200, 503}


@pytest.mark.parametrize("raw_headers, status", [
    ([("Host", "evil.example"), ("Host", "localhost")], 400),  # two Host headers: neither is trusted
    ([("Host", "localhost:8080@evil.example")], 400),  # userinfo is no part of a Host header
    # same host, another scheme: another origin
    ([("Host", "localhost"), ("Origin", "https://localhost")], 403),
    ([("Host", "localhost:1234"), ("Origin", "http://localhost:999")], 403),  # another port
    ([("Host", "localhost:80"), ("Origin", "http://localhost")], 200),  # the default port is the same origin
])
def test_host_and_origin_are_parsed_strictly(folder, raw_headers, status, runtime):
    """Raw sockets, so that what the client sends reaches the server as sent."""
    with running(model=str(folder), runtime=runtime) as (url, _):
        wait_ready(url)
        head = "".join(f"{k}: {v}\r\n" for k, v in raw_headers)
        answer = exchange(url, f"POST /invocations HTTP/1.1\r\n{head}Content-Type: "
                               f"text/plain\r\nContent-Length: 2\r\n"
                               "Connection: close\r\n\r\nhi".encode())
    assert answer[0] == status, answer
    if status != 200:
        assert b"x-request-id" in answer[1] and b'"error"' in answer[2]


def test_unknown_routes_and_methods_answer_in_the_documented_error_shape(folder, runtime):
    with running(model=str(folder), runtime=runtime) as (url, _):
        for answer, status in ((httpx.get(f"{url}/nowhere"), 404), (httpx.get(f"{url}/invocations"), 405)):
            assert answer.status_code == status
            assert set(answer.json()) == {"error", "request_id"}
            assert answer.headers["x-request-id"] == answer.json()["request_id"]
        assert "POST" in httpx.put(f"{url}/invocations").headers["allow"]
