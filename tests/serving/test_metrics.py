"""What an operator sees of a real server: /metrics in Prometheus' text format (read back with
prometheus_client's parser) and the JSON access log of `emoji-reco serve --log-format json`."""
import json
import subprocess
import sys

import httpx
import pytest

from helpers.network import free_port
from helpers.serving import SERVED_FORMS, exchange, metric, post, running, scrape, wait_ready, wait_serving


@pytest.fixture(scope="module")
def folder(tiny_bundle):
    return tiny_bundle[1]


def test_metrics_count_every_answer_by_route_and_status_and_scraping_costs_the_model_nothing(folder, runtime):
    with running(model=str(folder), runtime=runtime) as (url, parts):
        version = wait_ready(url)["version"]
        for _ in range(3):
            assert post(url, ["hello", "there"]).status_code == 200
        # an empty text: refused, counted, not scored
        assert post(url, {"instances": ["  "]}).status_code == 400
        assert httpx.get(f"{url}/no/such/page").status_code == 404
        # below the app
        assert exchange(url, b"BREW /invocations HTTP/1.1\r\nHost: localhost\r\n\r\n")[0] == 400
        calls = parts.batcher.calls
        for _ in range(20):
            samples = scrape(url)
        assert parts.batcher.calls == calls  # 20 scrapes, not one model call
        assert metric(samples, "emoji_reco_requests_total", route="/invocations", status="200") == 3
        assert metric(samples, "emoji_reco_requests_total", route="/invocations", status="400") == 1
        assert metric(samples, "emoji_reco_requests_total", route="other", status="404") == 1
        assert metric(samples, "emoji_reco_connection_refusals_total", status="400") == 1
        assert metric(samples, "emoji_reco_request_seconds_count", route="/invocations") == 4
        assert metric(samples, "emoji_reco_batch_texts_count") == calls and metric(
            samples, "emoji_reco_batch_texts_sum") == 6
        assert metric(samples, "emoji_reco_model_info", version=version, runtime=SERVED_FORMS[runtime]) == 1
        assert metric(samples,
                      "emoji_reco_queued_texts") == 0 and metric(samples, "emoji_reco_open_requests") == 0
        # known before it happens
        assert metric(samples, "emoji_reco_capture_records_total", outcome="dropped") == 0
        # the same rules
        assert httpx.get(f"{url}/metrics", headers={"Host": "evil.example"}).status_code == 403
        with pytest.raises(AssertionError, match="no emoji_reco_requests_total"):  # never exported: not a 0
            metric(samples, "emoji_reco_requests_total", route="/invocations", status="418")


def test_the_json_log_has_one_access_record_per_request_and_never_the_texts(folder):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "emoji_reco.cli", "serve", "--model", str(folder),
                               "--port",
                               str(port), "--log-format", "json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE,
                              text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_serving(url, server)
        answer = post(url, ["a private thought 41723", "another"])
        refused = post(url, ["fine", ""])
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    records = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is one JSON object
    access = {r["request_id"]: r for r in records if r["logger"] == "emoji_reco.serving.access"}
    ok, bad = access[answer.headers["x-request-id"]], access[refused.headers["x-request-id"]]
    assert (ok["status"], ok["texts"], ok["path"], ok["method"]) == (200, 2, "/invocations", "POST")
    assert ok["version"] == answer.json()["version"] and ok["ms"] > 0 and bad["status"] == 400
    assert "private thought" not in err and all({"time", "level", "message"} <= set(r) for r in records)
