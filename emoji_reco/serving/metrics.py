"""The server's Prometheus metrics (prometheus_client), served at /metrics.

One server process keeps them in its own registry. A server of several workers (`--workers`) uses
prometheus_client's multiprocess mode: `serve` points $PROMETHEUS_MULTIPROC_DIR at a fresh folder before the
workers start, each worker writes its values there, and /metrics, whichever worker answers it, reads them all:
counters and histograms summed, gauges summed over live workers, the serving version the highest over them.
"""
import os
import shutil
import tempfile

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ROUTES = ("/invocations", "/ping", "/metrics", "/", "/docs", "/openapi.json", "/execution-parameters")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST
SHED_REASONS = ("queue_full", "open_requests", "deadline")
DROP_REASONS = ("deadline", "gone")
CAPTURE_OUTCOMES = ("written", "dropped")


def share_between_workers() -> str:
    """Multiprocess mode for the workers this process will start: a fresh folder in
    $PROMETHEUS_MULTIPROC_DIR."""
    folder = tempfile.mkdtemp(prefix="emoji-reco-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    return folder


def stop_sharing(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class Metrics:
    """Every metric the server reports. In multiprocess mode (the environment says) values go to the shared
    folder; else to this instance's own registry."""

    def __init__(self):
        self.registry = None if os.environ.get(MULTIPROC_ENV) else CollectorRegistry()
        own = {"registry": self.registry}
        self.requests = Counter("emoji_reco_requests", "Requests answered by the app, by route and status.",
                                ["route", "status"], **own)
        self.latency = Histogram("emoji_reco_request_seconds", "Time from a request's headers to its answer.",
                                 ["route"], buckets=LATENCY_BUCKETS, **own)
        self.refused_below = Counter("emoji_reco_connection_refusals", "Answers the "
                                                                       "connection layer sent before "
                                     "the app saw the request (408 slow client, 429 refusal "
                                     "budget, 503 connection "
                                     "caps, 400 malformed HTTP), by status.", ["status"], **own)
        self.batch_texts = Histogram("emoji_reco_batch_texts", "Texts per model call.", buckets=BATCH_BUCKETS,
                                     **own)
        self.queued_texts = Gauge("emoji_reco_queued_texts", "Texts waiting for the model.",
                                  multiprocess_mode="livesum", **own)
        self.open_requests = Gauge("emoji_reco_open_requests", "/invocations requests in progress.",
                                   multiprocess_mode="livesum", **own)
        self.shed = Counter("emoji_reco_shed_requests", "Requests answered 503 to shed load, by "
                                                        "reason (queue full, "
                            "too many open requests, deadline passed).", ["reason"], **own)
        self.dropped = Counter("emoji_reco_dropped_requests", "Requests taken off the queue "
                                                              "before the model saw "
                               "them, by reason (deadline passed, client gone).", ["reason"], **own)
        self.model = Gauge("emoji_reco_model_info", "1 for the model version serving, and the form of it "
                           "(runtime: savedmodel, litert_int8).", ["version", "runtime"],
                           multiprocess_mode="livemax", **own)
        self.unscorable = Counter("emoji_reco_unscorable_records", "Batch Transform records answered as "
                                  "unscorable: nothing left to score after cleaning.", **own)
        self.reload_failures = Counter("emoji_reco_model_reload_failures", "Model versions "
                                                                           "that failed to load.",
                                       **own)
        self.capture = Counter("emoji_reco_capture_records", "Captured request/answer records, by outcome "
                               "(written, dropped: buffer full or the write failed).", ["outcome"], **own)
        known = ((self.shed, SHED_REASONS), (self.dropped, DROP_REASONS), (self.capture, CAPTURE_OUTCOMES))
        for counter, values in known:  # every known series exported from the start, at 0 until it happens
            for value in values:
                counter.labels(value)
        self._version = None

    def answered(self, path: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def serving(self, version: str, runtime: str) -> None:
        if self._version is not None:
            self.model.labels(*self._version).set(0)
        self.model.labels(version, runtime).set(1)
        self._version = (version, runtime)

    def exposition(self) -> bytes:
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
