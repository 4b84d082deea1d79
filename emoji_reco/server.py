"""The inference server: SageMaker's container contract (GET /ping, POST /invocations on port 8080), a web
page at /, and an OpenAPI description at /openapi.json. Used locally and as our inference image's `serve`."""
import asyncio
import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from . import payloads
from .batching import MicroBatcher
from .model_source import open_source

log = logging.getLogger("emoji_reco.server")
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


@dataclass(frozen=True)
class Loaded:
    predictor: object
    version: str
    emojis: list


class ServedModel:
    """The model being served; a new version is loaded and warmed on the side, then swapped in whole, so
    requests in flight finish on the version they started with."""

    def __init__(self, source):
        self.source = source
        self.current: Loaded | None = None
        self.failed: dict[str, str] = {}

    def load(self, version: str) -> Loaded:
        from .bundle import Predictor

        predictor = Predictor(self.source.folder(version))
        predictor.warm_up()
        self.current = Loaded(predictor, version, predictor.emojis)
        log.info("serving version %s from %s", version, self.source.describe)
        return self.current

    def predict(self, texts: list[str]) -> list:
        loaded = self.current
        return [(row, loaded) for row in loaded.predictor.logits(texts).tolist()]

    async def follow(self, interval: float) -> None:
        """Load the source's newest version whenever it changes; a version that fails to load is skipped."""
        loop = asyncio.get_running_loop()
        while True:
            version = await loop.run_in_executor(None, self.source.version)
            if version and version not in self.failed and (self.current is None or version != self.current.version):
                try:
                    await loop.run_in_executor(None, self.load, version)
                except Exception as exc:  # keep serving what we have
                    self.failed[version] = str(exc)
                    log.error("version %s failed to load, still serving %s: %s", version,
                              self.current and self.current.version, exc)
            if not self.source.follows:  # one attempt; a failure shows in /ping
                return
            await asyncio.sleep(interval)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


_TEXTS_SCHEMA = {"oneOf": [
    {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 256},
    {"type": "object", "required": ["instances"], "properties": {"instances": {"type": "array", "items": {"type": "string"}}}},
    {"type": "object", "required": ["inputs"], "properties": {"inputs": {"oneOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}},
]}
_PREDICTION = {"type": "object", "properties": {"emoji": {"type": "string"}, "probability": {"type": "number"}}}
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}
INVOCATIONS_API = {
    "parameters": [
        {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1}, "description": "emojis per text (default 3)"},
        {"name": "raw", "in": "query", "schema": {"type": "string", "enum": ["logits"]}, "description": "raw scores instead"},
        {"name": "X-Top-K", "in": "header", "schema": {"type": "integer", "minimum": 1}},
    ],
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": _TEXTS_SCHEMA},
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
        "413": {"description": "payload too large", **_ERROR},
        "415": {"description": "unsupported content type", **_ERROR},
        "503": {"description": "no model loaded yet", **_ERROR},
    },
}


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


def create_app(settings: ServeSettings) -> FastAPI:
    """The ASGI app for `settings`; the model loads in the background, /ping says when it is ready."""
    model = ServedModel(open_source(settings.model, settings.endpoint))
    calls, op_threads = model_threads(settings)
    batcher = MicroBatcher(model.predict, settings.max_batch, settings.max_wait_ms, calls)

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

    @app.get("/ping", summary="200 once a model is loaded and warm")
    async def ping():
        if model.current is None:
            reason = "; ".join(f"{v}: {e}" for v, e in model.failed.items()) or f"loading from {model.source.describe}"
            return _error(503, f"No model loaded yet ({reason}).")
        return {"status": "ready", "version": model.current.version}

    @app.post("/invocations", summary="Top emojis for each text", openapi_extra=INVOCATIONS_API)
    async def invocations(request: Request):
        try:
            body = await _read_body(request, settings.max_body_bytes)
            texts = payloads.parse_texts(body, request.headers.get("content-type"), settings.max_texts)
            if model.current is None:
                return _error(503, "No model loaded yet; retry when /ping answers 200.")
            k = payloads.parse_k(request.query_params.get("k") or request.headers.get("x-top-k"),
                                 settings.default_k, len(model.current.emojis))
            raw = request.query_params.get("raw") == "logits"
        except payloads.BadRequest as exc:
            return _error(exc.status, str(exc))
        try:
            rows = await batcher.submit(texts)
        except Exception as exc:  # the model failed, not the request
            log.exception("model call failed")
            return _error(500, f"The model failed on this request: {exc}")
        loaded = rows[0][1]
        return payloads.response([r for r, _ in rows], loaded.emojis, min(k, len(loaded.emojis)), raw, loaded.version)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    return app


def app_from_env() -> FastAPI:
    """App factory for uvicorn's worker processes: settings come through the environment."""
    return create_app(ServeSettings(**json.loads(os.environ[SETTINGS_ENV])))


def serve(settings: ServeSettings) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if settings.workers <= 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
        return
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    uvicorn.run("emoji_reco.server:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level="info")
