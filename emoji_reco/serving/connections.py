"""The connection layer under the app: uvicorn's httptools protocol plus what a hardened HTTP server adds. A
request's headers and its body each have a deadline (slow clients are cut off, 408); each client address may
hold only so many connections (503 at once past it); past the server's connection cap every route but /ping
gets 503, so the health check stays green while the server sheds; and the errors sent from this layer
(malformed HTTP included) are JSON in the app's shape, with an X-Request-Id, like every other answer."""
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("emoji_reco.serving.server")
LINGER_SECONDS = 1.0
REASONS = {400: b"Bad Request", 408: b"Request Timeout", 429: b"Too Many Requests",
           503: b"Service Unavailable"}


@dataclass(frozen=True)
class ConnectionLimits:
    header_seconds: float = 10.0  # from a request's first byte (or the connection's start) to its last header
    body_seconds: float = 10.0  # from the last header to the body's last byte
    per_client: int = 256  # open connections per client address; 0: no cap
    # Past these many open connections, or requests in the app, every route but /ping gets 503; 0: no cap.
    connections: int = 0
    requests: int = 0


def request_id() -> str:
    return uuid.uuid4().hex[:16]


def error_bytes(status: int, message: str, headers: dict | None = None) -> bytes:
    """A whole HTTP/1.1 error response in the app's JSON shape, closing the connection."""
    rid = request_id()
    body = json.dumps({"error": message, "request_id": rid}).encode()
    lines = [b"HTTP/1.1 %d %s" % (status, REASONS[status]), b"content-type: application/json",
             b"content-length: %d" % len(body), b"x-request-id: " + rid.encode(), b"connection: close",
             *(f"{k}: {v}".encode("latin-1") for k, v in (headers or {}).items())]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def busy_app(message: str):
    """An ASGI app that answers 503 + Retry-After in the JSON shape and closes the connection."""
    async def app(scope, receive, send):
        raw = error_bytes(503, message, {"retry-after": "1"})
        head, body = raw.split(b"\r\n\r\n", 1)
        headers = [tuple(line.split(b": ", 1)) for line in head.split(b"\r\n")[1:]]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    return app


class RefusalBudget:
    """The requests one client address may have refused (4xx) per second, as a token bucket: past it the
    connection layer holds its next request a second, then answers 429 before reading the body, so a client
    that keeps sending what is refused (too costly, malformed) costs the server its headers, not its body. A
    refusal counts one, or the CPU the server spent on it (reading and pricing the request) in `CPU_UNIT_S`
    units when that is more: what a client may waste is bounded in CPU, not only in requests. `per_second` 0:
    no budget."""

    CPU_UNIT_S = 0.005  # at 2 refusals a second, an address may take ~1% of a core refusing it

    def __init__(self, per_second: float):
        self.rate, self.buckets = per_second, {}  # address -> (tokens, when)

    def _tokens(self, address: str, now: float) -> float:
        tokens, when = self.buckets.get(address, (self.rate, now))
        return min(self.rate, tokens + (now - when) * self.rate)

    def charge(self, address: str, cpu_s: float = 0.0) -> None:
        if self.rate:
            now = time.monotonic()
            self.buckets[address] = (self._tokens(address, now) - max(1.0, cpu_s / self.CPU_UNIT_S), now)
            if len(self.buckets) > 10_000:  # forget the addresses whose budget is whole again
                self.buckets = {a: b for a, b in self.buckets.items() if self._tokens(a, now) < self.rate}

    def spent(self, address: str) -> bool:
        return bool(self.rate) and address in self.buckets and self._tokens(address, time.monotonic()) < 1


def _guard(app):
    """The app uvicorn serves, under uvicorn's own middleware: the layer holding `connection_limits`."""
    while app is not None and not hasattr(app, "connection_limits"):
        app = getattr(app, "app", None)
    return app


class LimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (`http=LimitedProtocol`) with the `ConnectionLimits` of the app it
    serves."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        guard = _guard(self.app)
        self.limits = getattr(guard, "connection_limits", ConnectionLimits())
        self.refusals = getattr(guard, "refusals", RefusalBudget(0))
        self.metrics = getattr(guard, "metrics", None)
        self.by_client: Counter = self.server_state.__dict__.setdefault("connections_by_client", Counter())
        self.address = None
        self.timer = None
        self.lingering = False
        self.held = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.address = self.client[0] if self.client else ""
        self.by_client[self.address] += 1
        if self.limits.per_client and self.by_client[self.address] > self.limits.per_client:
            log.warning("refused a connection from %s: it holds %d already", self.address,
                        self.limits.per_client)
            self.refuse(503, f"Too many connections from your address (at most {self.limits.per_client}).",
                        {"retry-after": "1"})
            return
        self.arm(self.limits.header_seconds, "headers")

    def connection_lost(self, exc) -> None:
        self.disarm()
        self.by_client[self.address] -= 1
        if self.by_client[self.address] <= 0:
            del self.by_client[self.address]
        super().connection_lost(exc)

    def arm(self, seconds: float, part: str) -> None:
        self.disarm()
        self.timer = self.loop.call_later(seconds, self.too_slow, seconds, part)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def too_slow(self, seconds: float, part: str) -> None:
        self.timer = None
        log.warning("closed a connection from %s: its request %s took over %g s", self.address, part, seconds)
        self.refuse(408, f"The request's {part} did not arrive within {seconds:g} s.")

    def refuse(self, status: int, message: str, headers: dict | None = None) -> None:
        """Answer `status` and close. The app's request in progress, if any, sees its client leave; if its
        answer had begun, the connection just closes. The connection stays open a moment, unread (what the
        client still sends waits in its own buffers, costing us nothing), so that the client reads this answer
        before the close resets the connection."""
        if self.transport.is_closing() or self.lingering:
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self.lingering = True
        self.count_refusal(status)
        self.transport.pause_reading()
        self.transport.write(error_bytes(status, message, headers))
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def count_refusal(self, status: int) -> None:
        if self.metrics:
            self.metrics.refused_below.labels(str(status)).inc()

    def data_received(self, data: bytes) -> None:
        if not self.lingering:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self.refuse(400, msg)

    def on_message_begin(self) -> None:
        if self.held:
            return
        super().on_message_begin()
        if self.timer is None:  # the next request on a kept-alive connection
            self.arm(self.limits.header_seconds, "headers")

    def on_headers_complete(self) -> None:
        if self.held:
            return
        self.disarm()
        app, limits = self.app, self.limits
        if self.url.split(b"?", 1)[0] != b"/ping":
            if self.refusals.spent(self.address):  # held unread for a second, then refused: a tarpit
                self.held = True  # what the parser has of this request already goes nowhere
                self.transport.pause_reading()
                self.timer = self.loop.call_later(
                    1.0, self.refuse, 429, "Too many refused requests from your address; retry in a second.",
                    {"retry-after": "1"})
                return
            if 0 < limits.connections < len(self.connections) or 0 < limits.requests <= len(self.tasks):
                self.app = busy_app("The server is busy; retry shortly.")
                self.count_refusal(503)
        try:
            super().on_headers_complete()
        finally:
            self.app = app
        self.scope["state"]["peer"] = self.address  # the app charges refusals to the address we see
        if self.parser.get_method() not in (b"GET", b"HEAD") or any(
                k in (b"content-length", b"transfer-encoding") for k, _ in self.headers):
            self.arm(self.limits.body_seconds, "body")

    def on_body(self, body: bytes) -> None:
        if not self.held:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.held:
            return
        self.disarm()
        super().on_message_complete()

