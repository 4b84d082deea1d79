"""Captured traffic: a sample of requests and their answers, written in batches as JSON Lines in the layout
SageMaker's data capture writes, so that one reader (`read`) handles the traffic of both:

    {uri}/{endpoint}/{variant}/YYYY/MM/DD/HH/{time}-{id}.jsonl, one event per line:
    {"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                       "data": "[\"so hyped\"]", "encoding": "JSON"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "{\"version\": ..., \"predictions\": ...}", "encoding":
                                        "JSON"}},
     "eventMetadata": {"eventId": "…", "inferenceTime": "2026-12-04T16:00:00Z"}, "eventVersion": "0"}

Memory is bounded: at most `max_records` events wait (more are dropped and counted); a file is written every
`flush_seconds`, or as soon as `file_records` events wait, off the event loop. A write that fails (a full
disk, S3 unreachable) drops its events, counted in /metrics and logged, and never fails a request.
"""
import asyncio
import base64
import json
import logging
import os
import random
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emoji_reco import storage

log = logging.getLogger("emoji_reco.serving.capture")
ENCODINGS = {"application/json": "JSON", "text/csv": "CSV"}  # any other body: BASE64, as SageMaker does
VARIANT = "AllTraffic"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _part(body: bytes, content_type: str, mode: str) -> dict:
    """One side of an exchange; its content type whole (`text/csv; header=present` says how to read it
    back)."""
    observed = (content_type or "application/json").strip()
    encoding = ENCODINGS.get(observed.split(";")[0].strip().lower(), "BASE64")
    data = base64.b64encode(body).decode() if encoding == "BASE64" else body.decode("utf-8")
    return {"observedContentType": observed, "mode": mode, "data": data, "encoding": encoding}


def event(when: float, body: bytes, content_type: str, answer: dict) -> dict:
    """One captured request and its (JSON) answer, as SageMaker writes it."""
    return {"captureData": {"endpointInput": _part(body, content_type, "INPUT"),
                            "endpointOutput": _part(json.dumps(answer, ensure_ascii=False).encode(),
                                                    "application/json", "OUTPUT")},
            "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": _iso(when)}, "eventVersion": "0"}


class Capture:
    """Samples `sample` (0–1) of the answered requests into `uri`/`endpoint`/AllTraffic/…; `run` writes
    them."""

    def __init__(self, uri: str, sample: float, endpoint: str, metrics, flush_seconds: float = 60.0,
                 file_records: int = 1000, max_records: int = 10_000):
        self.uri, self.sample, self.endpoint, self.metrics = uri, sample, endpoint, metrics
        self.flush_seconds, self.file_records, self.max_records = flush_seconds, file_records, max_records
        self.pending: deque = deque()
        self._full = asyncio.Event()

    def record(self, body: bytes, content_type: str, answer: dict) -> None:
        """Keep this request and answer, if it falls in the sample and there is room."""
        if random.random() >= self.sample:
            return
        if len(self.pending) >= self.max_records:
            self.metrics.capture.labels("dropped").inc()
            return
        self.pending.append((time.time(), body, content_type, answer))
        if len(self.pending) >= self.file_records:
            self._full.set()

    async def run(self) -> None:
        """Write what waits every `flush_seconds` (sooner when a file's worth waits) until cancelled; then the
        rest."""
        try:
            while True:
                try:
                    await asyncio.wait_for(self._full.wait(), self.flush_seconds)
                except TimeoutError:
                    pass
                self._full.clear()
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch = [self.pending.popleft() for _ in range(min(len(self.pending), self.file_records))]
            try:
                await loop.run_in_executor(None, self._write, batch)
            except Exception as exc:  # a full disk, S3 away: count and log, never fail the requests
                log.warning("dropped %d captured requests: writing them to %s failed: %s", len(batch),
                            self.uri, exc)
                self.metrics.capture.labels("dropped").inc(len(batch))
            else:
                self.metrics.capture.labels("written").inc(len(batch))

    def _write(self, batch: list) -> None:
        first = batch[0][0]
        # SageMaker's name: minute-second-millisecond of the first record, so names sort in the order written
        stamp = f"{time.strftime('%M-%S', time.gmtime(first))}-{int(first * 1000) % 1000:03d}"
        name = f"{stamp}-{uuid.uuid4().hex[:12]}.jsonl"
        uri = storage.join(self.uri, self.endpoint, VARIANT, time.strftime("%Y/%m/%d/%H", time.gmtime(first)),
                           name)
        lines = (json.dumps(event(*item), ensure_ascii=False) for item in batch)
        storage.put_bytes(("\n".join(lines) + "\n").encode("utf-8"), uri)


def files(uri: str) -> list[str]:
    """Every captured .jsonl file under `uri` (a folder or an s3:// prefix), in name order (time order within
    an endpoint and variant)."""
    if storage.is_s3(uri):
        from metaflow import S3

        with S3() as s3:
            return sorted(o.url for o in s3.list_recursive([uri.rstrip("/") + "/"])
                          if o.url.endswith(".jsonl"))
    return sorted(str(p) for p in Path(uri).rglob("*.jsonl")) if os.path.isdir(uri) else []


def _data(part: dict) -> bytes:
    return base64.b64decode(part["data"]) if part["encoding"] == "BASE64" else part["data"].encode("utf-8")


def texts_of(part: dict) -> list[str]:
    """The texts of a captured request (`endpointInput`), read as the server read them."""
    from emoji_reco.serving import payloads

    return payloads.parse_texts(_data(part), part["observedContentType"], 1 << 30, lambda _: False)


def _hour_of(path: str) -> datetime | None:
    parts = path.replace("\\", "/").split("/")[-5:-1]
    try:
        return datetime(*map(int, parts), tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def read(uri: str, since: datetime | None = None, until: datetime | None = None):
    """(inference time, texts, the answer's predictions) of every captured request under `uri` (ours or
    SageMaker's) from `since` up to `until`; a file whose hour folder lies outside that window is not read."""
    for path in files(uri):
        hour = _hour_of(path)
        if hour and ((since and hour + timedelta(hours=1) <= since) or (until and hour >= until)):
            continue
        for line in (storage.read_text(path) or "").splitlines():
            if not line.strip():
                continue
            captured = json.loads(line)
            when = datetime.strptime(captured["eventMetadata"]["inferenceTime"],
                                     "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC)
            if (since and when < since) or (until and when >= until):
                continue
            data = captured["captureData"]
            answer = json.loads(_data(data["endpointOutput"]))
            yield when, texts_of(data["endpointInput"]), answer["predictions"]

