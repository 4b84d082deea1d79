"""The outermost layer of the server: a request id for every request, and the Host and Origin checks."""
import logging
import re
import time
import uuid

from emoji_reco.serving import logs
from emoji_reco.serving.responses import error

log = logging.getLogger("emoji_reco.serving.server")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


# RFC 9110's uri-host [":" port], no userinfo
HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(:[0-9]{1,5})?")
DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def _hostname(value: str) -> str | None:
    """`host[:port]` or `[v6]:port` → the host name alone, lower case; None for anything else."""
    match = HOST.fullmatch(value.strip().lower())
    return match.group(1).strip("[]") if match else None


def _origin(value: str) -> str:
    """scheme://host[:port], lower case, without a trailing slash or the scheme's default port."""
    value = value.strip().rstrip("/").lower()
    scheme = value.split("://", 1)[0]
    return value.removesuffix(DEFAULT_PORTS.get(scheme, "\0"))


class Guard:
    """ASGI middleware: gives each request an id (X-Request-Id), refuses a foreign Host (DNS rebinding) or a
    cross-site Origin (a web page posting to a server on the user's machine) with a 403, and counts, times and
    logs every answer (`metrics`, `logs.access`)."""

    def __init__(self, app, settings, metrics):
        self.app, self.metrics = app, metrics
        hosts = settings.allowed_hosts
        if hosts is None:
            hosts = list(LOOPBACK) if settings.host in LOOPBACK else ["*"]
        self.hosts = {"*" if h == "*" else _hostname(h) or h.lower() for h in hosts}
        self.origins = {_origin(o) for o in settings.allowed_origins}

    def refusal(self, headers: list[tuple[str, str]], scheme: str) -> tuple[int, str] | None:
        """(status, reason) for a request to refuse: not exactly one well-formed Host, a foreign Host name, or
        a cross-site Origin (same-origin means the same scheme, host and port as this request)."""
        hosts = [v for k, v in headers if k == "host"]
        if len(hosts) != 1 or _hostname(hosts[0]) is None:
            return 400, "Send exactly one Host header, host[:port]."
        if "*" not in self.hosts and _hostname(hosts[0]) not in self.hosts:
            return 403, "This server does not answer for that Host name (see --allowed-hosts)."
        origins = [_origin(v) for k, v in headers if k == "origin"]
        if origins and "*" not in self.origins and not all(
                o in self.origins or o == _origin(f"{scheme}://{hosts[0]}") for o in origins):
            return 403, "Cross-site requests are refused (see --allowed-origins)."
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, request_id = time.perf_counter(), uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        answer = {"status": 500}  # if the app sends nothing at all

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                answer["status"] = message["status"]
            await send(message)

        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            if refused := self.refusal(headers, scope.get("scheme", "http")):
                log.warning("request %s refused: %s", request_id,
                            [v for k, v in headers if k in ("host", "origin")])
                return await error(*refused, request_id)(scope, receive, send_with_id)
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.answered(scope["path"], answer["status"], seconds)
            logs.access({"request_id": request_id, "method": scope["method"], "path": scope["path"],
                         "status": answer["status"], "ms": round(seconds * 1000, 1),
                         **{k: state[k] for k in ("texts", "version") if k in state}})
