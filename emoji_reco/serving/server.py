"""The inference server: SageMaker's container contract (GET /ping, POST /invocations on port 8080), a web
page at /, and an OpenAPI description at /openapi.json. Used locally and as our inference image's `serve`."""
import asyncio
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from emoji_reco.data.cleaning import is_empty
from emoji_reco.serving import invocation, logs, payloads
from emoji_reco.serving.batching import DeadlineExceeded, MicroBatcher, Overloaded
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


async def _no_rows() -> list:
    """What scoring gives a request none of whose records has anything to score."""
    return []


def limit_op_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran in this process (an embedding app or a test): keep its setting
        log.info("TensorFlow is already initialised; keeping its thread settings")


def create_app(settings: ServeSettings) -> Guard:
    """The ASGI app for `settings`. A model that is there loads before the worker takes connections; a new version
    (or a model awaited) loads in the background; /ping says when one is ready."""
    metrics = Metrics()
    model = ServedModel(open_source(settings.model, settings.endpoint, settings.wait_for_model), metrics)
    calls, op_threads = model_threads(settings)
    batcher = MicroBatcher(model.predict, settings.max_batch, settings.max_wait_ms, calls, settings.max_queued_texts,
                           metrics)
    capture = (Capture(settings.capture_uri, settings.capture_sample, settings.endpoint, metrics,
                       settings.capture_flush_seconds) if settings.capture_sample else None)
    deadline = settings.deadline_ms / 1000
    open_requests = 0
    refusals = RefusalBudget(settings.max_refusals_per_client_s)

    async def lifespan(app):
        limit_op_threads(op_threads)
        await batcher.start()
        await model.check(settings.reload_seconds)  # a model that is there loads before this worker takes connections
        follower = asyncio.create_task(model.follow(settings.reload_seconds)) if model.source.follows else None
        writer = asyncio.create_task(capture.run()) if capture else None
        yield
        for task in (follower, writer):
            if task:
                task.cancel()
        if writer:
            await asyncio.gather(writer, return_exceptions=True)  # what was captured is written before the exit
        await batcher.stop()

    app = FastAPI(title="emoji-reco", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Emoji recommendations for short texts, on SageMaker's inference container contract.")
    app.mount("/swagger-ui", StaticFiles(directory=STATIC / "swagger-ui"), name="swagger-ui")
    app.state.model, app.state.batcher = model, batcher

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        """404, 405 and the like in the documented error shape, with the request id."""
        return error(exc.status_code, str(exc.detail), request.state.request_id, exc.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        """A bug, not the request's fault: the JSON error shape, the detail in the log under the request id."""
        log.error("request %s failed", request.state.request_id, exc_info=exc)
        return error(500, "The server failed on this request.", request.state.request_id)

    @app.get("/ping", summary="200 while a model serves; says when the newest version failed to load")
    async def ping(request: Request):
        problem = model.problem()
        if model.current is None:
            return error(503, f"No model loaded yet ({problem or 'loading'}).", request.state.request_id)
        return {"status": "ready", "version": model.current.version, **({"problem": problem} if problem else {})}

    @app.post("/invocations", summary="Top emojis for each text", openapi_extra=invocations_api(settings))
    async def invocations(request: Request):
        nonlocal open_requests
        request_id = request.state.request_id
        try:  # a slow body holds a connection (cut at its deadline), never a place among the requests in progress
            body = await invocation.read_body(request, settings.max_body_bytes)
        except (ClientDisconnect, payloads.BadRequest) as exc:
            response = invocation.refused(exc, request_id)
        else:
            if open_requests >= settings.max_open_requests:
                metrics.shed.labels("open_requests").inc()
                return error(503, BUSY_MESSAGE, request_id, BUSY)
            open_requests += 1
            metrics.open_requests.inc()
            try:
                response = await answer(request, body, request_id)
            finally:
                open_requests -= 1
                metrics.open_requests.dec()
        if 400 <= getattr(response, "status_code", 200) < 499:  # an answer is a dict, serialized by FastAPI
            refusals.charge(getattr(request.state, "peer", request.client and request.client.host),
                            getattr(request.state, "cpu_s", 0.0))
        return response

    async def answer(request: Request, body: bytes, request_id: str):
        expires = asyncio.get_running_loop().time() + deadline
        try:
            started = time.thread_time()  # what reading the request costs, charged to its client if it is refused
            try:
                texts = payloads.parse_texts(body, request.headers.get("content-type"), settings.max_texts, is_empty,
                                             refuse_empty=not settings.answer_every_record)
                kept = invocation.scorable(texts, is_empty, settings.answer_every_record)
            finally:
                request.state.cpu_s = time.thread_time() - started
            request.state.texts = len(texts)
            explain = payloads.explain_requested(body, request.headers.get("content-type"))
            if model.current is None:
                return error(503, "No model loaded yet; retry when /ping answers 200.", request_id, BUSY)
            k = payloads.parse_k(request.query_params.get("k") or request.headers.get("x-top-k"),
                                 settings.default_k, len(model.current.emojis))
            raw = request.query_params.get("raw") == "logits"
            if settings.max_request_tokens:
                await invocation.within_token_budget(request, model.current.predictor, texts, settings.max_request_tokens)
        except payloads.BadRequest as exc:
            return invocation.refused(exc, request_id)
        if len(kept) < len(texts):
            metrics.unscorable.inc(len(texts) - len(kept))
            log.info("request %s: %d of %d records have nothing to score; answered as such", request_id,
                     len(texts) - len(kept), len(texts))
        to_score = [texts[i] for i in kept]
        scoring = asyncio.ensure_future(batcher.submit(to_score, expires - asyncio.get_running_loop().time())
                                        if to_score else _no_rows())
        watch = asyncio.ensure_future(invocation.client_left(request))
        try:
            await asyncio.wait((scoring, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if not scoring.done():  # the client left: drop its texts before the model sees them
            scoring.cancel()
            return error(499, "Client closed the request.", request_id)
        try:
            rows = scoring.result()
        except Overloaded:
            metrics.shed.labels("queue_full").inc()
            return error(503, BUSY_MESSAGE, request_id, BUSY)
        except DeadlineExceeded:
            metrics.shed.labels("deadline").inc()
            return error(503, f"No answer within {settings.deadline_ms:.0f} ms; the server is busy.", request_id, BUSY)
        except Exception:  # the model failed, not the request; the log has the detail
            log.exception("request %s: the model failed", request_id)
            return error(500, "The model failed on this request.", request_id)
        loaded = rows[0][1] if rows else model.current
        logits = invocation.placed([r for r, _ in rows], kept, len(texts))
        request.state.version = loaded.version
        k = min(k, len(loaded.emojis))
        lines = payloads.render_lines(logits, loaded.emojis, k, raw, loaded.version, request.headers.get("accept"))
        reply = None if lines else payloads.response(logits, loaded.emojis, k, raw, loaded.version)
        if explain and reply:
            reply["explanations"] = await asyncio.get_running_loop().run_in_executor(
                None, invocation.explanations, loaded.predictor, texts, payloads.top_k(logits, loaded.emojis, k))
        if capture:  # the JSON answer, whatever form the client asked for
            capture.record(body, request.headers.get("content-type"),
                           reply or payloads.response(logits, loaded.emojis, k, raw, loaded.version))
        return Response(lines[0], media_type=lines[1]) if lines else reply

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page():
        """Prometheus' text format (metrics.py); reads counters only, never the model."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/execution-parameters", include_in_schema=False)
    async def execution_parameters():
        """What SageMaker Batch Transform asks before a job that leaves these unset."""
        return {"MaxConcurrentTransforms": settings.workers * calls,
                "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": max(1, settings.max_body_bytes >> 20)}

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs():
        """Swagger UI from the files the package ships (swagger-ui-dist 5.35.0): no third-party script runs on the
        origin that serves /invocations, and it works offline."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title="emoji-reco API",
                                   swagger_js_url="/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/swagger-ui/favicon-32x32.png")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    guarded = Guard(app, settings, metrics)
    guarded.state = app.state  # tests and the bench look at the batcher
    # Read by the connection layer. Requests in progress in the app (all routes) have a backstop past the
    # /invocations bound above.
    guarded.refusals, guarded.metrics = refusals, metrics
    guarded.connection_limits = ConnectionLimits(settings.header_timeout_s, settings.body_timeout_s,
                                                 settings.max_connections_per_client, settings.max_connections,
                                                 4 * settings.max_open_requests + 64)
    return guarded


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
    """How uvicorn serves the app: on our connection layer (deadlines, caps, JSON errors below the app), logging as
    `logs.configure` set it up, with our access record (the Guard's) instead of uvicorn's."""
    return {"host": settings.host, "port": settings.port, "log_level": log_level, "http": LimitedProtocol,
            "log_config": None, "access_log": False}


def serve(settings: ServeSettings) -> None:
    import uvicorn

    logs.configure(settings.log_format)
    _raise_file_limit(settings.workers * settings.max_connections + 256)
    options = uvicorn_options(settings)
    if settings.workers <= 1:
        uvicorn.run(create_app(settings), **options)
        return
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    shared = share_between_workers()
    try:
        uvicorn.run("emoji_reco.serving.server:app_from_env", factory=True, workers=settings.workers, **options)
    finally:
        stop_sharing(shared)
