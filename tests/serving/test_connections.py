"""The connection layer in-process: its error answers byte for byte, the busy app, the refusal budget on a
clock the test moves, finding the app's limits under uvicorn's middleware, and the layer itself over sockets
under a plain app (no model: fast enough to run for every mutant); test_slow_clients.py tests it under the
real app."""
import asyncio
import json
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from emoji_reco.serving import connections
from emoji_reco.serving.connections import ConnectionLimits, LimitedProtocol, RefusalBudget
from emoji_reco.serving.metrics import Metrics
from helpers.network import free_port


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
    assert headers[b"content-type"] == b"application/json"
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
    kept = RefusalBudget(1)
    for i in range(9_999):
        kept.charge(f"10.1.{i // 256}.{i % 256}")
    clock.now += 5
    kept.charge("the 10,000th")  # 10,000 addresses: not past the size, nothing forgotten yet
    assert len(kept.buckets) == 10_000
    clock.now = 100.0
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


class Plain:
    """An ASGI app with the connection layer's settings on it (what `create_app`'s guard carries), answering
    200 with the body it read; a request to /hold waits until `release` is set."""

    def __init__(self, limits: ConnectionLimits, refusals: RefusalBudget | None = None):
        self.connection_limits, self.refusals, self.metrics = limits, refusals or RefusalBudget(0), Metrics()
        self.release, self.peers, self.disconnected = threading.Event(), [], 0

    async def __call__(self, scope, receive, send):
        self.peers.append(scope["state"].get("peer"))
        body, more = b"", True
        while more:
            message = await receive()
            self.disconnected += message["type"] == "http.disconnect"
            body, more = body + message.get("body", b""), message.get("more_body", False)
        if scope["path"] == "/hold":
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 10)
        answer = b"ok " + body
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})


@contextmanager
def layer(**limits):
    """A real uvicorn server on the connection layer (`http=LimitedProtocol`) serving `Plain`; yields (port,
    app)."""
    import uvicorn

    refusals = limits.pop("refusals", None)
    app = Plain(ConnectionLimits(**limits), refusals)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), http=LimitedProtocol,
                                           lifespan="off", log_level="critical", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield server.config.port, app
    finally:
        app.release.set()
        server.should_exit = True
        thread.join(10)


def answer(sock) -> tuple[int, dict, bytes]:
    """(status, headers, body) of what arrives on `sock` until the server closes it."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), dict(line.lower().split(": ", 1) for line in lines[1:]), body


def opened(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def refused_with(sock, status: int, message: str) -> dict:
    got, headers, body = answer(sock)
    assert got == status and json.loads(body) == {"error": message, "request_id": headers["x-request-id"]}
    return headers


GET = b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("sent, part, limit", [
    (b"POST /x HTTP/1.1\r\nHost: localhost\r\n", "headers", "header_seconds"),
    (b"", "headers", "header_seconds"),  # a connection that never sends a byte
    (b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc", "body", "body_seconds"),
    (b"GET /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc", "body", "body_seconds"),
    (b"GET /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc", "body",
     "body_seconds")])
def test_a_request_part_that_does_not_arrive_in_time_gets_408_at_its_deadline(sent, part, limit, caplog):
    with layer(**{limit: 0.4}) as (port, app):
        started = time.monotonic()  # before the connection opens, where the first deadline may start
        with opened(port) as sock:
            sock.sendall(sent)
            refused_with(sock, 408, f"The request's {part} did not arrive within 0.4 s.")
        assert 0.39 < time.monotonic() - started < 3
        assert app.metrics.refused_below.labels("408")._value.get() == 1
        # told at once, not when the socket closes
        deadline = time.monotonic() + connections.LINGER_SECONDS * 0.8
        while part == "body" and not app.disconnected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert app.disconnected == (part == "body")  # a request the app was reading sees its client leave
    assert f"closed a connection from 127.0.0.1: its request {part} took over 0.4 s" in [
        r.getMessage() for r in caplog.records]


def test_each_request_on_a_kept_alive_connection_gets_its_own_header_deadline():
    with layer(header_seconds=0.4) as (port, _), opened(port) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(0.6)  # idle between requests: no deadline of ours (uvicorn's keep-alive timeout)
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: loc")  # the third request's headers begin, and stall
        refused_with(sock, 408, "The request's headers did not arrive within 0.4 s.")
        assert time.monotonic() - started < 3


def test_a_body_that_arrives_in_time_is_read_whole():
    with layer(body_seconds=1) as (port, _), opened(port) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\nConnection: "
                     b"close\r\n\r\nab")
        time.sleep(0.3)
        sock.sendall(b"cdef")
        assert answer(sock)[0::2] == (200, b"ok abcdef")


def test_one_address_holds_at_most_its_connections_and_a_closed_one_frees_a_place(caplog):
    with layer(per_client=2) as (port, app):
        first, second = opened(port), opened(port)
        with opened(port) as third:
            headers = refused_with(third, 503, "Too many connections from your address (at most 2).")
            assert headers["retry-after"] == "1" and headers["connection"] == "close"
        first.close()
        time.sleep(0.2)
        with opened(port) as again:
            time.sleep(0.1)
            with opened(port) as over:  # again and second: 2 open, the cap
                refused_with(over, 503, "Too many connections from your address (at most 2).")
            again.sendall(GET)
            assert answer(again)[0] == 200
        second.close()
        assert app.metrics.refused_below.labels("503")._value.get() == 2
    assert ("refused a connection from "
            "127.0.0.1: it holds 2 already" in [r.getMessage() for r in caplog.records])
    assert app.peers == ["127.0.0.1"]  # the app charges refusals to the address the layer saw


def test_past_the_connection_cap_every_route_but_ping_is_busy():
    with layer(connections=2, per_client=0) as (port, app):
        idle = [opened(port), opened(port)]
        time.sleep(0.1)
        with opened(port) as busy:
            busy.sendall(GET)
            assert refused_with(busy, 503, "The server is busy; retry shortly.")["retry-after"] == "1"
        with opened(port) as ping:
            ping.sendall(b"GET /ping?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert answer(ping)[0] == 200
        for sock in idle:
            sock.close()
        assert app.metrics.refused_below.labels("503")._value.get() == 1


def test_past_the_request_cap_a_new_request_is_busy_until_one_ends():
    with layer(requests=1) as (port, app), opened(port) as held:
        held.sendall(b"GET /hold HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)
        with opened(port) as busy:
            busy.sendall(GET)
            refused_with(busy, 503, "The server is busy; retry shortly.")
        app.release.set()
        assert answer(held)[0] == 200
        with opened(port) as later:
            later.sendall(GET)
            assert answer(later)[0] == 200


def test_an_address_out_of_refusals_is_held_a_second_then_gets_429_and_ping_still_answers():
    budget = RefusalBudget(1)
    with layer(refusals=budget) as (port, app):
        budget.charge("127.0.0.1", cpu_s=RefusalBudget.CPU_UNIT_S * 5)  # spent for the next 4 seconds
        with opened(port) as held:
            started = time.monotonic()
            held.sendall(b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc")
            headers = refused_with(held, 429, "Too many refused requests from your "
                                              "address; retry in a second.")
            assert headers["retry-after"] == "1" and 0.9 < time.monotonic() - started < 1.9
        budget.charge("127.0.0.1")
        with opened(port) as ping:
            ping.sendall(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert answer(ping)[0] == 200


def test_malformed_http_gets_400_in_the_json_shape():
    with layer() as (port, app), opened(port) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, body = answer(sock)
        error = json.loads(body)
        assert status == 400 and error["request_id"] == headers["x-request-id"] and isinstance(error["error"],
                                                                                               str)
        assert error["error"]
        assert app.metrics.refused_below.labels("400")._value.get() == 1


def test_an_app_without_limits_of_its_own_is_served_with_the_defaults():
    import uvicorn

    async def bare(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    server = uvicorn.Server(uvicorn.Config(bare, host="127.0.0.1", port=free_port(), http=LimitedProtocol,
                                           lifespan="off", log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        with opened(server.config.port) as sock:
            sock.sendall(GET)
            assert answer(sock)[0::2] == (200, b"ok")
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_connection_cut_off_is_closed_after_its_answer_and_frees_its_place():
    with layer(header_seconds=0.3, per_client=1) as (port, _):
        slow = opened(port)  # never sends: 408, then closed by the server, though the client keeps it open
        slow.settimeout(5)
        assert slow.recv(65536).startswith(b"HTTP/1.1 408")
        time.sleep(connections.LINGER_SECONDS + 0.5)
        with opened(port) as next_one:
            next_one.sendall(GET)
            assert answer(next_one)[0] == 200
        slow.close()


@pytest.mark.parametrize("cap, idle, busy", [(1, 1, True), (2, 1, False), (2, 2, True)])
def test_the_connection_cap_counts_the_connection_asking(cap, idle, busy):
    with layer(connections=cap, per_client=0) as (port, _):
        held = [opened(port) for _ in range(idle)]
        time.sleep(0.1)
        with opened(port) as sock:
            sock.sendall(GET)
            assert answer(sock)[0] == (503 if busy else 200)
        for one in held:
            one.close()
