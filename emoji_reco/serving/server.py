"""The inference server: SageMaker's container contract (GET /ping, POST /invocations on port 8080), a web
page at /, and an OpenAPI description at /openapi.json. Used locally and as our inference image's `serve`."""
import asyncio
import dataclasses
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import ClientDisconnect

from emoji_reco.serving import payloads
from emoji_reco.serving.batching import DeadlineExceeded, MicroBatcher, Overloaded
from emoji_reco.serving.sources import open_source

log = logging.getLogger("emoji_reco.serving.server")
STATIC = Path(__file__).resolve().parent / "static"
SETTINGS_ENV = "EMOJI_RECO_SERVE"


@dataclass
class ServeSettings:
    model: str | None = None  # bundle folder, model.tar.gz, or s3://; None: the local endpoint's current version
    endpoint: str = "emoji-reco"
    host: str = "127.0.0.1"
    port: int = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8080))
    workers: int = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", 1))
    max_batch: int = 64  # texts per model call; 1 turns micro-batching off
    model_threads: int = 0  # model calls at once per worker; 0: one per CPU core of the worker's share
    max_wait_ms: float = 0.0
    max_texts: int = 256  # per request
    max_body_bytes: int = 1 << 20
    default_k: int = 3
    reload_seconds: float = 2.0
    # Overload: beyond these a request gets 503 + Retry-After at once (bench/RESULTS.md, "Reliability").
    max_queued_texts: int = 128  # texts waiting for the model, per worker: 2 batches, enough to keep 2 cores busy
    max_open_requests: int = 256  # /invocations requests in progress, per worker
    deadline_ms: float = 2000.0  # a request not scored by then gets 503; the model never sees it
    # Who may call: Host names (None: loopback names when bound to loopback, else any) and cross-site
    # Origins (same-origin pages always may); ["*"] allows any.
    allowed_hosts: list | None = None
    allowed_origins: list = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Loaded:
    predictor: object
    version: str
    emojis: list


@dataclass
class Failure:
    """A version that failed to load: tried again after a backoff, never pinned."""

    attempts: int
    retry_at: float


class ServedModel:
    """The model being served; a new version is loaded and warmed on the side, then swapped in whole, so
    requests in flight finish on the version they started with."""

    def __init__(self, source):
        self.source = source
        self.current: Loaded | None = None
        self.failed: dict[str, Failure] = {}
        self.source_error: str | None = None  # why the source's newest version can't be read now

    def load(self, version: str) -> Loaded:
        from emoji_reco.model.bundle import Predictor

        predictor = Predictor(self.source.folder(version))
        predictor.warm_up()
        self.current = Loaded(predictor, version, predictor.emojis)
        log.info("serving version %s from %s", version, self.source.describe)
        return self.current

    def predict(self, texts: list[str]) -> list:
        loaded = self.current
        return [(row, loaded) for row in loaded.predictor.logits(texts).tolist()]

    def _due(self, version: str | None) -> bool:
        if not version or (self.current is not None and version == self.current.version):
            return False
        failure = self.failed.get(version)
        return failure is None or time.monotonic() >= failure.retry_at

    async def check(self, interval: float) -> None:
        """Load the source's newest version if it is new (or due for another try); never raises."""
        loop = asyncio.get_running_loop()
        try:
            version = await loop.run_in_executor(None, self.source.version)
            self.source_error = None
        except Exception:  # an unreadable or half-written pointer: keep serving, look again later
            log.exception("can't read the newest version from %s; still serving %s", self.source.describe,
                          self.current and self.current.version)
            self.source_error = "the newest version can't be read; see the server log"
            return
        if not self._due(version):
            return
        try:
            await loop.run_in_executor(None, self.load, version)
            self.failed.clear()  # older failures no longer keep the newest version from serving
        except Exception:  # keep serving what we have; try this version again after a backoff
            attempts = self.failed[version].attempts + 1 if version in self.failed else 1
            delay = min(300.0, max(interval, 1.0) * 2 ** (attempts - 1))
            self.failed[version] = Failure(attempts, time.monotonic() + delay)
            log.exception("version %s failed to load (attempt %d), retrying in %.0f s; still serving %s",
                          version, attempts, delay, self.current and self.current.version)

    async def follow(self, interval: float) -> None:
        """Check for a new version every `interval` seconds (once, for a fixed model)."""
        while True:
            await self.check(interval)
            if not self.source.follows:
                return
            await asyncio.sleep(interval)

    def problem(self) -> str | None:
        """What keeps the newest version from serving, in words fit for any client (details go to the log)."""
        if self.source_error:
            return self.source_error
        if not self.failed:
            return None
        version, failure = list(self.failed.items())[-1]
        retry = max(0, round(failure.retry_at - time.monotonic())) if self.source.follows else None
        return (f"version {version} failed to load ({failure.attempts} attempt(s)"
                + (f"; next try in {retry} s)" if retry is not None else ")") + "; see the server log")


def _error(status: int, message: str, request_id: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "request_id": request_id}, status_code=status, headers=headers)


_PREDICTION = {"type": "object", "properties": {"emoji": {"type": "string"}, "probability": {"type": "number"}}}
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "error": {"type": "string"}, "request_id": {"type": "string"}}}}}}


def invocations_api(settings: ServeSettings) -> dict:
    """The OpenAPI description of /invocations, with this server's limits."""
    strings = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": settings.max_texts}
    texts = {"oneOf": [
        strings,
        {"type": "object", "required": ["instances"], "properties": {"instances": strings}},
        {"type": "object", "required": ["inputs"], "properties": {"inputs": {"oneOf": [{"type": "string"}, strings]}}},
    ]}
    return {
        "parameters": [
            {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1},
             "description": "emojis per text (default 3)"},
            {"name": "raw", "in": "query", "schema": {"type": "string", "enum": ["logits"]},
             "description": "raw scores instead"},
            {"name": "X-Top-K", "in": "header", "schema": {"type": "integer", "minimum": 1}},
        ],
        "requestBody": {"required": True, "description": f"at most {settings.max_body_bytes} bytes", "content": {
            "application/json": {"schema": texts},
            "text/plain": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}}}},
        "responses": {
            "200": {"description": "top emojis per text, or raw logits", "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "version": {"type": "string"},
                    "predictions": {"type": "array", "items": {"type": "array", "items": _PREDICTION}},
                    "labels": {"type": "array", "items": {"type": "string"}},
                    "logits": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}}}}}},
            "400": {"description": "the request can't be answered", **_ERROR},
            "403": {"description": "foreign Host or cross-site Origin", **_ERROR},
            "413": {"description": "payload too large", **_ERROR},
            "415": {"description": "unsupported content type", **_ERROR},
            "500": {"description": "the model failed; the server log has the detail under the request id", **_ERROR},
            "503": {"description": "busy (retry after Retry-After seconds), past the deadline, or no model yet",
                    **_ERROR},
        },
    }


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

    def __init__(self, app, settings: ServeSettings):
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
            return await _error(403, reason, request_id)(scope, receive, send_with_id)
        await self.app(scope, receive, send_with_id)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise payloads.BadRequest(f"Payload of {declared} bytes is over the {limit}-byte limit.", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise payloads.BadRequest(f"Payload is over the {limit}-byte limit.", 413)
    return bytes(body)


async def _client_left(request: Request) -> None:
    """Returns when the client disconnects (call after the body was read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def model_threads(settings: ServeSettings) -> tuple[int, int]:
    """(model calls at once, TensorFlow threads per op) for one worker. On small models, concurrent
    single-threaded calls beat one call spread over the cores: measured on 2 cores, 1.41x the requests/s with
    16 clients, and a lone text no slower (bench/RESULTS.md)."""
    cores = max(1, len(os.sched_getaffinity(0)) // max(1, settings.workers))
    calls = settings.model_threads or cores
    return calls, max(1, cores // calls)


def limit_op_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran in this process (an embedding app or a test): keep its setting
        log.info("TensorFlow is already initialised; keeping its thread settings")


BUSY, BUSY_MESSAGE = {"Retry-After": "1"}, "The server is busy; retry shortly."


def create_app(settings: ServeSettings) -> Guard:
    """The ASGI app for `settings`; the model loads in the background, /ping says when it is ready."""
    model = ServedModel(open_source(settings.model, settings.endpoint))
    calls, op_threads = model_threads(settings)
    batcher = MicroBatcher(model.predict, settings.max_batch, settings.max_wait_ms, calls, settings.max_queued_texts)
    deadline = settings.deadline_ms / 1000
    open_requests = 0

    async def lifespan(app):
        limit_op_threads(op_threads)
        await batcher.start()
        follower = None
        if model.source.follows:
            follower = asyncio.create_task(model.follow(settings.reload_seconds))
        else:  # a fixed model loads before this worker takes connections
            await model.follow(settings.reload_seconds)
        yield
        if follower:
            follower.cancel()
        await batcher.stop()

    app = FastAPI(title="emoji-reco", version="1", lifespan=lifespan,
                  description="Emoji recommendations for short texts, on SageMaker's inference container contract.")
    app.state.model, app.state.batcher = model, batcher

    @app.get("/ping", summary="200 while a model serves; says when the newest version failed to load")
    async def ping(request: Request):
        problem = model.problem()
        if model.current is None:
            return _error(503, f"No model loaded yet ({problem or 'loading'}).", request.state.request_id)
        return {"status": "ready", "version": model.current.version, **({"problem": problem} if problem else {})}

    @app.post("/invocations", summary="Top emojis for each text", openapi_extra=invocations_api(settings))
    async def invocations(request: Request):
        nonlocal open_requests
        request_id = request.state.request_id
        if open_requests >= settings.max_open_requests:
            return _error(503, BUSY_MESSAGE, request_id, BUSY)
        open_requests += 1
        try:
            return await answer(request, request_id)
        finally:
            open_requests -= 1

    async def answer(request: Request, request_id: str):
        expires = asyncio.get_running_loop().time() + deadline
        try:
            body = await _read_body(request, settings.max_body_bytes)
            texts = payloads.parse_texts(body, request.headers.get("content-type"), settings.max_texts)
            if model.current is None:
                return _error(503, "No model loaded yet; retry when /ping answers 200.", request_id, BUSY)
            k = payloads.parse_k(request.query_params.get("k") or request.headers.get("x-top-k"),
                                 settings.default_k, len(model.current.emojis))
            raw = request.query_params.get("raw") == "logits"
        except ClientDisconnect:
            return _error(499, "Client closed the request.", request_id)
        except payloads.BadRequest as exc:
            return _error(exc.status, str(exc), request_id)
        scoring = asyncio.ensure_future(batcher.submit(texts, expires - asyncio.get_running_loop().time()))
        watch = asyncio.ensure_future(_client_left(request))
        try:
            await asyncio.wait((scoring, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if not scoring.done():  # the client left: drop its texts before the model sees them
            scoring.cancel()
            return _error(499, "Client closed the request.", request_id)
        try:
            rows = scoring.result()
        except Overloaded:
            return _error(503, BUSY_MESSAGE, request_id, BUSY)
        except DeadlineExceeded:
            return _error(503, f"No answer within {settings.deadline_ms:.0f} ms; the server is busy.", request_id, BUSY)
        except Exception:  # the model failed, not the request; the log has the detail
            log.exception("request %s: the model failed", request_id)
            return _error(500, "The model failed on this request.", request_id)
        loaded = rows[0][1]
        return payloads.response([r for r, _ in rows], loaded.emojis, min(k, len(loaded.emojis)), raw, loaded.version)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    guarded = Guard(app, settings)
    guarded.state = app.state  # tests and the bench look at the batcher
    return guarded


def app_from_env() -> Guard:
    """App factory for uvicorn's worker processes: settings come through the environment."""
    return create_app(ServeSettings(**json.loads(os.environ[SETTINGS_ENV])))


def serve(settings: ServeSettings) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # A backstop on connections and tasks (uvicorn answers 503 past it); requests are bounded per worker above.
    options = {"host": settings.host, "port": settings.port, "log_level": "info",
               "limit_concurrency": 4 * settings.max_open_requests + 64}
    if settings.workers <= 1:
        uvicorn.run(create_app(settings), **options)
        return
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    uvicorn.run("emoji_reco.serving.server:app_from_env", factory=True, workers=settings.workers, **options)
