"""The inference server: SageMaker's container contract (GET /ping, POST /invocations on port 8080), a web
page at /, and an OpenAPI description at /openapi.json. Used locally and as our inference image's `serve`.

It is made of parts (`Parts`), each a module of its own: admission (requests in progress), parsing and scoring
a request (`invocation`, `batching`), rendering its answer (`rendering`), capture, metrics, and the `Guard`
and connection layer below the app. `create_app` only wires them to routes."""
import asyncio
import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from emoji_reco.model.bundle import read_metadata
from emoji_reco.model.runtimes import check_int8
from emoji_reco.serving import invocation, listening, logs, payloads, rendering
from emoji_reco.serving.admission import Admission
from emoji_reco.serving.batching import MicroBatcher
from emoji_reco.serving.capture import Capture
from emoji_reco.serving.connections import ConnectionLimits, LimitedProtocol, RefusalBudget
from emoji_reco.serving.guard import Guard
from emoji_reco.serving.metrics import CONTENT_TYPE, Metrics, share_between_workers, stop_sharing
from emoji_reco.serving.openapi import invocations_api
from emoji_reco.serving.responses import BUSY, BUSY_MESSAGE, error
from emoji_reco.serving.serve_settings import ServeSettings, model_threads
from emoji_reco.serving.served_model import ServedModel
from emoji_reco.serving.sources import open_source

log = logging.getLogger("emoji_reco.serving.server")
STATIC = Path(__file__).resolve().parent / "static"
SETTINGS_ENV = "EMOJI_RECO_SERVE"


def refuse_unservable(settings: ServeSettings, source=None) -> None:
    """A fixed bundle that can't serve the runtime demanded (int8): the server refuses to start, naming the
    file or the extra to install (`runtimes.check_int8`). A source that follows new versions says so on
    /ping."""
    if settings.runtime != "int8":
        return
    source = source or open_source(settings.model, settings.endpoint, settings.wait_for_model)
    if not source.follows:
        folder = source.folder(source.version())
        check_int8(folder, read_metadata(folder))


@dataclass
class Parts:
    """What a server is made of besides its routes; `create_app` wires them, and a caller that builds them (a
    test, a bench) can watch them at work."""

    metrics: Metrics
    model: ServedModel
    batcher: MicroBatcher
    admission: Admission
    refusals: RefusalBudget
    capture: Capture | None
    calls: int  # model calls at once
    op_threads: int  # threads per model call

    @classmethod
    def build(cls, settings: ServeSettings) -> "Parts":
        metrics = Metrics()
        calls, op_threads = model_threads(settings)
        source = open_source(settings.model, settings.endpoint, settings.wait_for_model)
        refuse_unservable(settings, source)
        model = ServedModel(source, metrics, {"runtime": settings.runtime, "calls": calls,
                                              "op_threads": op_threads})
        batcher = MicroBatcher(model.predict, settings.max_batch, settings.max_wait_ms, calls,
                               settings.max_queued_texts, metrics)
        capture = (Capture(settings.capture_uri, settings.capture_sample, settings.endpoint, metrics,
                           settings.capture_flush_seconds) if settings.capture_sample else None)
        return cls(metrics, model, batcher, Admission(settings.max_open_requests, metrics),
                   RefusalBudget(settings.max_refusals_per_client_s), capture, calls, op_threads)


def create_app(settings: ServeSettings, parts: Parts | None = None) -> Guard:
    """The ASGI app for `settings`, made of `parts` (built from `settings` if not given). A model that is
    there loads before the worker takes connections; a new version (or a model awaited) loads in the
    background; /ping says when one is ready. Under it all, the `Guard` (request ids, Host and Origin checks,
    access records), which carries the connection layer's limits."""
    parts = parts or Parts.build(settings)
    app = FastAPI(title="emoji-reco", version="1", lifespan=_lifespan(settings, parts), docs_url=None,
                  redoc_url=None,
                  description="Emoji recommendations for short texts, on SageMaker's "
                              "inference container contract.")
    _answer_errors(app)
    _serve_invocations(app, settings, parts)
    _serve_pages(app, settings, parts)
    guarded = Guard(app, settings, parts.metrics)
    guarded.refusals = parts.refusals
    # Requests in progress in the app (all routes) have a backstop past the /invocations bound (admission).
    guarded.connection_limits = ConnectionLimits(settings.header_timeout_s, settings.body_timeout_s,
                                                 settings.max_connections_per_client,
                                                 settings.max_connections,
                                                 4 * settings.max_open_requests + 64)
    return guarded


def _lifespan(settings: ServeSettings, parts: Parts):
    async def lifespan(app):
        await parts.batcher.start()
        # a model that is there loads before taking connections
        await parts.model.check(settings.reload_seconds)
        follower = (asyncio.create_task(parts.model.follow(settings.reload_seconds))
                    if parts.model.source.follows
                    else None)
        writer = asyncio.create_task(parts.capture.run()) if parts.capture else None
        yield
        for task in (follower, writer):
            if task:
                task.cancel()
        if writer:
            # what was captured is written before the exit
            await asyncio.gather(writer, return_exceptions=True)
        await parts.batcher.stop()

    return lifespan


def _answer_errors(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        """404, 405 and the like in the documented error shape, with the request id."""
        return error(exc.status_code, str(exc.detail), request.state.request_id, exc.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        """A bug, not the request's fault: the JSON error shape, the detail in the log under the request
        id."""
        log.error("request %s failed", request.state.request_id, exc_info=exc)
        return error(500, "The server failed on this request.", request.state.request_id)


def _serve_invocations(app: FastAPI, settings: ServeSettings, parts: Parts) -> None:
    @app.post("/invocations", summary="Top emojis for each text", openapi_extra=invocations_api(settings))
    async def invocations(request: Request):
        request_id = request.state.request_id
        # a slow body holds a connection (cut at its deadline), never a place among the requests in progress
        try:
            body = await invocation.read_body(request, settings.max_body_bytes)
        except (ClientDisconnect, payloads.BadRequest) as exc:
            response = invocation.refused(exc, request_id)
        else:
            if not parts.admission.enter():
                return error(503, BUSY_MESSAGE, request_id, BUSY)
            try:
                response = await answer(request, body)
            finally:
                parts.admission.leave()
        if 400 <= getattr(response, "status_code", 200) < 499:  # an answer is a dict, serialized by FastAPI
            parts.refusals.charge(getattr(request.state, "peer", request.client and request.client.host),
                                  getattr(request.state, "cpu_s", 0.0))
        return response

    async def answer(request: Request, body: bytes):
        expires, request_id = (asyncio.get_running_loop().time() + settings.deadline_ms / 1000,
                               request.state.request_id)
        try:
            asked = await invocation.parse(request, body, settings, parts.model)
        except payloads.BadRequest as exc:
            return invocation.refused(exc, request_id)
        except invocation.NotReady:
            return error(503, "No model loaded yet; retry when /ping answers 200.", request_id, BUSY)
        if len(asked.kept) < len(asked.texts):
            parts.metrics.unscorable.inc(len(asked.texts) - len(asked.kept))
            log.info("request %s: %d of %d records have nothing to score; answered as such", request_id,
                     len(asked.texts) - len(asked.kept), len(asked.texts))
        rows = await invocation.scores(request, parts.batcher, [asked.texts[i] for i in asked.kept], expires,
                                       settings.deadline_ms, parts.metrics)
        if isinstance(rows, Response):
            return rows
        loaded = rows[0][1] if rows else parts.model.current
        request.state.version = loaded.version
        return await rendering.render(asked, [r for r, _ in rows], loaded, request.headers.get("accept"),
                                      parts.capture)


def _serve_pages(app: FastAPI, settings: ServeSettings, parts: Parts) -> None:
    app.mount("/swagger-ui", StaticFiles(directory=STATIC / "swagger-ui"), name="swagger-ui")

    @app.get("/ping", summary="200 while a model serves; says when the newest version failed to load")
    async def ping(request: Request):
        problem, current = parts.model.problem(), parts.model.current
        if current is None:
            return error(503, f"No model loaded yet ({problem or 'loading'}).", request.state.request_id)
        return {"status": "ready", "version": current.version, "runtime": current.predictor.runtime,
                **({"problem": problem} if problem else {})}

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page():
        """Prometheus' text format (metrics.py); reads counters only, never the model."""
        return Response(parts.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/execution-parameters", include_in_schema=False)
    async def execution_parameters():
        """What SageMaker Batch Transform asks before a job that leaves these unset."""
        return {"MaxConcurrentTransforms": settings.workers * parts.calls,
                "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": max(1, settings.max_body_bytes >> 20)}

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs():
        """Swagger UI from the files the package ships (swagger-ui-dist 5.35.0): no third-party script runs on
        the origin that serves /invocations, and it works offline."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title="emoji-reco API",
                                   swagger_js_url="/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/swagger-ui/favicon-32x32.png")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))


def app_from_env() -> Guard:
    """App factory for uvicorn's worker processes: settings come through the environment."""
    settings = ServeSettings(**json.loads(os.environ[SETTINGS_ENV]))
    logs.configure(settings.log_format)  # a spawned worker starts with no logging set up
    return create_app(settings)


def _raise_file_limit(wanted: int) -> None:
    """Let the process open `wanted` files (sockets) if the hard limit allows, else as many as it does."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        log.info("open files limit raised from %d to %d", soft, target)


def uvicorn_options(settings: ServeSettings, log_level: str = "info") -> dict:
    """How uvicorn serves the app: on our connection layer (deadlines, caps, JSON errors below the app),
    logging as `logs.configure` set it up, with our access record (the Guard's) instead of uvicorn's."""
    return {"host": settings.host, "port": settings.port, "log_level": log_level, "http": LimitedProtocol,
            "log_config": None, "access_log": False}


def serve(settings: ServeSettings) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    logs.configure(settings.log_format)
    _raise_file_limit(settings.workers * settings.max_connections + 256)
    options = uvicorn_options(settings)
    if settings.workers <= 1:
        uvicorn.run(create_app(settings), **options)
        return
    # refused here, in one line, rather than in every worker process
    refuse_unservable(settings)
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    shared = share_between_workers()
    try:
        config = uvicorn.Config("emoji_reco.serving.server:app_from_env", factory=True,
                                workers=settings.workers, **options)
        address = listening.bound(settings.host, settings.port)
        log.info("serving on http://%s:%d in %d processes", *address.getsockname()[:2], settings.workers)
        Multiprocess(config, sockets=[address]).run()
    finally:
        stop_sharing(shared)
