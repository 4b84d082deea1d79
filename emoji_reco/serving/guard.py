"""The outermost layer of the server: a request id for every request, and the Host and Origin checks."""
import logging
import uuid

from emoji_reco.serving.responses import error

log = logging.getLogger("emoji_reco.serving.server")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _hostname(value: str) -> str:
    """`host[:port]` or `[v6]:port` → the host name alone, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: gives each request an id (X-Request-Id), and refuses a foreign Host (DNS rebinding) or a
    cross-site Origin (a web page posting to a server on the user's machine) with a 403."""

    def __init__(self, app, settings):
        self.app = app
        hosts = settings.allowed_hosts
        if hosts is None:
            hosts = list(LOOPBACK) if settings.host in LOOPBACK else ["*"]
        self.hosts = {_hostname(h) for h in hosts}
        self.origins = {o.rstrip("/").lower() for o in settings.allowed_origins}

    def refusal(self, headers: dict) -> str | None:
        host = headers.get("host", "")
        if "*" not in self.hosts and _hostname(host) not in self.hosts:
            return "This server does not answer for that Host name (see --allowed-hosts)."
        origin = headers.get("origin", "").rstrip("/").lower()
        if origin and "*" not in self.origins and origin not in self.origins:
            same = origin.split("://", 1)[-1] == host.lower()
            if not same:
                return "Cross-site requests are refused (see --allowed-origins)."
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if reason := self.refusal(headers):
            log.warning("request %s refused: Host %r Origin %r", request_id, headers.get("host"), headers.get("origin"))
            return await error(403, reason, request_id)(scope, receive, send_with_id)
        await self.app(scope, receive, send_with_id)
