"""The connection layer's pieces in-process: its error answers byte for byte, the busy app, the refusal budget on a
clock the test moves, and finding the app's limits under uvicorn's middleware (the layer itself is tested over
sockets in test_slow_clients.py)."""
import asyncio
import json

import pytest

from emoji_reco.serving import connections
from emoji_reco.serving.connections import ConnectionLimits, RefusalBudget


def test_an_error_answer_is_whole_http_in_the_apps_json_shape(monkeypatch):
    assert len(connections.request_id()) == 16 and connections.request_id() != connections.request_id()
    monkeypatch.setattr(connections, "request_id", lambda: "abc123")
    raw = connections.error_bytes(408, "too slow", {"retry-after": "1"})
    body = b'{"error": "too slow", "request_id": "abc123"}'
    assert raw == (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                   b"x-request-id: abc123\r\nconnection: close\r\nretry-after: 1\r\n\r\n" % len(body) + body)
    assert connections.error_bytes(400, "x").startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_the_busy_app_answers_503_with_retry_after_in_the_json_shape():
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(connections.busy_app("busy now")({"type": "http"}, None, send))
    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 503 and headers[b"retry-after"] == b"1" and headers[b"connection"] == b"close"
    assert json.loads(body["body"]) == {"error": "busy now", "request_id": headers[b"x-request-id"].decode()}
    assert int(headers[b"content-length"]) == len(body["body"])


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(connections.time, "monotonic", clock)
    return clock


def test_the_refusal_budget_refills_at_its_rate_and_charges_cpu_past_one_unit(clock):
    budget = RefusalBudget(2)
    assert not budget.spent("a")  # never refused
    budget.charge("a")
    assert not budget.spent("a") and budget.buckets["a"] == (1.0, 100.0)
    budget.charge("a")
    assert budget.spent("a")  # 0 tokens left
    clock.now += 0.25
    assert not budget.spent("b") and budget.spent("a")  # half a token back: still spent; others unaffected
    clock.now += 0.25
    assert not budget.spent("a")  # one whole token back
    clock.now += 10
    budget.charge("a", cpu_s=RefusalBudget.CPU_UNIT_S * 3)  # costlier than one unit: 3 tokens
    assert budget.buckets["a"] == (-1.0, clock.now)  # the bucket refilled only to its rate (2), then paid 3
    budget.charge("c", cpu_s=RefusalBudget.CPU_UNIT_S / 2)  # cheaper than a unit: still one
    assert budget.buckets["c"][0] == 1.0


def test_no_budget_means_nothing_is_counted_or_refused(clock):
    budget = RefusalBudget(0)
    for _ in range(5):
        budget.charge("a")
    assert budget.buckets == {} and not budget.spent("a")


def test_the_budget_forgets_addresses_whose_budget_is_whole_again(clock):
    budget = RefusalBudget(1)
    for i in range(10_000):
        budget.charge(f"10.0.{i // 256}.{i % 256}")
    clock.now += 5  # every one of them whole again
    budget.charge("new")
    assert budget.buckets == {"new": (0.0, clock.now)}
    budget.charge("other")  # not past the size: kept
    assert set(budget.buckets) == {"new", "other"}


def test_the_limits_are_found_under_any_middleware_and_default_otherwise():
    class Guard:
        connection_limits = ConnectionLimits(per_client=3)

    class Middleware:
        def __init__(self, app):
            self.app = app

    guard = Guard()
    assert connections._guard(Middleware(Middleware(guard))) is guard and connections._guard(guard) is guard
    assert connections._guard(Middleware(object())) is None and connections._guard(None) is None
    assert ConnectionLimits() == ConnectionLimits(10.0, 10.0, 256, 0, 0)
