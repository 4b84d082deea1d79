"""Captured traffic from a real server: SageMaker's data-capture layout on disk, read back by the same reader
that reads SageMaker's; sampling; and a capture that can't write never failing a request."""
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from emoji_reco.serving import capture
from emoji_reco.serving.metrics import Metrics
from helpers.serving import metric, post, running, scrape, wait_ready


@pytest.fixture(scope="module")
def folder(tiny_bundle):
    return tiny_bundle[1]


def wait_for(condition, seconds=20):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_captured_requests_and_answers_are_written_in_sagemakers_layout_and_read_back(folder, tmp_path):
    out = tmp_path / "captured"
    sent = [(["so hyped for tonight", "ugh monday"], "application/json"),
            ({"instances": ["first day at the beach"]}, "application/json"),
            (b"one per line\nsecond line\n", "text/plain"),
            (b"text\nfrom a csv\n", "text/csv; header=present")]
    with running(model=str(folder), endpoint="shop", capture_sample=1.0, capture_uri=str(out),
                 capture_flush_seconds=0.2) as (url, _):
        wait_ready(url)
        answers = [post(url, body, ctype).json() for body, ctype in sent]
        wait_for(lambda: metric(scrape(url), "emoji_reco_capture_records_total", outcome="written") == 4)
    files = capture.files(str(out))
    now = datetime.now(UTC)
    assert files and all(f.startswith(str(out / "shop" / "AllTraffic"
                                          / now.strftime("%Y/%m/%d"))) for f in files)
    events = [json.loads(line) for f in files for line in open(f, encoding="utf-8")]
    assert [e["captureData"]["endpointInput"]["encoding"] for e in events] == ["JSON", "JSON", "BASE64",
                                                                               "CSV"]
    assert all(e["captureData"]["endpointOutput"]["mode"] == "OUTPUT" and e["eventVersion"]
               == "0" for e in events)
    read = list(capture.read(str(out), since=now - timedelta(hours=1)))
    assert [texts for _, texts, _ in read] == [["so hyped for tonight", "ugh monday"],
                                               ["first day at the beach"],
                                               ["one per line", "second line"], ["from a csv"]]
    assert [predictions for _, _, predictions in read] == [a["predictions"] for a in answers]
    assert list(capture.read(str(out), since=now + timedelta(hours=2))) == []  # outside the window: not read


def test_a_sample_of_the_requests_is_captured(folder, tmp_path):
    with running(model=str(folder), capture_sample=0.3, capture_uri=str(tmp_path),
                 capture_flush_seconds=0.2) as (url, _):
        wait_ready(url)
        assert all(post(url, [f"tweet {i}"]).status_code == 200 for i in range(200))
        time.sleep(1)
        written = metric(scrape(url), "emoji_reco_capture_records_total", outcome="written")
    assert 30 <= written <= 90  # 200 x 0.3: 60 +- 4.6 sd
    assert sum(1 for f in capture.files(str(tmp_path)) for _ in open(f)) == written


def test_a_capture_that_cannot_write_never_fails_a_request_and_is_counted(folder, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with running(model=str(folder), capture_sample=1.0, capture_uri=str(tmp_path / "a-file" / "captured"),
                 capture_flush_seconds=0.2) as (url, _):
        wait_ready(url)
        assert all(post(url, [f"tweet {i}"]).status_code == 200 for i in range(5))
        wait_for(lambda: metric(scrape(url), "emoji_reco_capture_records_total", outcome="dropped") == 5)
        assert metric(scrape(url), "emoji_reco_capture_records_total", outcome="written") == 0


def test_memory_is_bounded_what_does_not_fit_is_dropped_and_counted():
    metrics = Metrics()
    kept = capture.Capture("/nowhere", 1.0, "e", metrics, max_records=5, file_records=100)
    for _ in range(20):
        kept.record(b'["x"]', "application/json", {"predictions": []})
    assert len(kept.pending) == 5 and metrics.capture.labels("dropped")._value.get() == 15
