"""What one /invocations request goes through before and around the model: reading its body within the limit,
parsing what it asks (`Asked`), pricing its tokens (charging the CPU that took to its client), waiting for its
scores unless the client leaves first, and the answer when it is refused."""
import asyncio
import logging
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from emoji_reco.data.cleaning import is_empty
from emoji_reco.serving import payloads
from emoji_reco.serving.batching import DeadlineExceeded, MicroBatcher, Overloaded
from emoji_reco.serving.responses import BUSY, BUSY_MESSAGE, error
from emoji_reco.serving.serve_settings import ServeSettings

log = logging.getLogger("emoji_reco.serving.server")


class NotReady(Exception):
    """No model is loaded yet."""


@dataclass(frozen=True)
class Asked:
    """What a request asks: its texts, the indices of those to score, how many emojis, raw logits,
    explanations; and its body and content type, as traffic capture records them."""

    texts: list[str]
    kept: list[int]
    k: int
    raw: bool
    explain: bool
    body: bytes
    content_type: str | None


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise payloads.BadRequest(f"Payload of {declared} bytes is over the {limit}-byte limit.", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise payloads.BadRequest(f"Payload is over the {limit}-byte limit.", 413)
    return bytes(body)


def priced(predictor, texts: list[str], limit: int) -> tuple[int, float]:
    """(tokens, CPU seconds the pricing took)."""
    started = time.thread_time()
    return predictor.token_count(texts, limit), time.thread_time() - started


async def within_token_budget(request: Request, predictor, texts: list[str], limit: int) -> None:
    """Refuse (413) a request that would cost the model more tokens than one request may, before it queues;
    the CPU its pricing took is added to `request.state.cpu_s`, for the refusal budget. A request that can't
    exceed the budget (each text counts at most `max_length`) is not priced: most are a few texts, and pricing
    one doubled the server's own CPU per request (bench/RESULTS.md)."""
    if len(texts) * predictor.metadata["max_length"] <= limit:
        return
    tokens, seconds = await asyncio.get_running_loop().run_in_executor(None, priced, predictor, texts, limit)
    request.state.cpu_s += seconds
    if tokens > limit:
        raise payloads.BadRequest(
            f"These {len(texts)} texts are at least {tokens} tokens; a request may have at "
            f"most {limit} (a text "
            f"counts up to {predictor.metadata['max_length']}). Send them in smaller requests.", 413)


def scorable(texts: list[str], is_empty, every_record: bool) -> list[int]:
    """The indices of the texts the model scores: all (parsing refused empty ones), or with `every_record`
    (Batch Transform) those with something left after cleaning; the others get an answer saying so."""
    return [i for i, text in enumerate(texts) if not (every_record and is_empty(text))]


def refused(exc: Exception, request_id: str) -> Response:
    if isinstance(exc, ClientDisconnect):
        return error(499, "Client closed the request.", request_id)
    return error(exc.status, str(exc), request_id)


async def client_left(request: Request) -> None:
    """Returns when the client disconnects (call after the body was read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def parse(request: Request, body: bytes, settings: ServeSettings, model) -> Asked:
    """What the request asks, checked: `payloads.BadRequest` for a malformed one (the CPU reading it took is
    left in `request.state.cpu_s`), `NotReady` while `model` has nothing loaded."""
    content_type = request.headers.get("content-type")
    started = time.thread_time()
    try:
        texts = payloads.parse_texts(body, content_type, settings.max_texts, is_empty,
                                     refuse_empty=not settings.answer_every_record)
        kept = scorable(texts, is_empty, settings.answer_every_record)
    finally:
        request.state.cpu_s = time.thread_time() - started
    request.state.texts = len(texts)
    explain = payloads.explain_requested(body, content_type)
    current = model.current
    if current is None:
        raise NotReady
    k = payloads.parse_k(request.query_params.get("k") or request.headers.get("x-top-k"), settings.default_k,
                         len(current.emojis))
    if settings.max_request_tokens:
        await within_token_budget(request, current.predictor, texts, settings.max_request_tokens)
    return Asked(texts, kept, k, request.query_params.get("raw") == "logits", explain, body, content_type)


async def scores(request: Request, batcher: MicroBatcher, texts: list[str], expires: float,
                 deadline_ms: float,
                 metrics) -> list | Response:
    """The batcher's rows for `texts` by `expires` (event-loop time), or the error response: the client left
    (its texts are dropped before the model sees them), the queue is full, the deadline passed, or the model
    failed."""
    request_id = request.state.request_id
    seconds = expires - asyncio.get_running_loop().time()
    scoring = asyncio.ensure_future(batcher.submit(texts, seconds) if texts else _no_rows())
    watch = asyncio.ensure_future(client_left(request))
    try:
        await asyncio.wait((scoring, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not scoring.done():
        scoring.cancel()
        return error(499, "Client closed the request.", request_id)
    try:
        return scoring.result()
    except Overloaded:
        metrics.shed.labels("queue_full").inc()
        return error(503, BUSY_MESSAGE, request_id, BUSY)
    except DeadlineExceeded:
        metrics.shed.labels("deadline").inc()
        return error(503, f"No answer within {deadline_ms:.0f} ms; the server is busy.", request_id, BUSY)
    except Exception:  # the model failed, not the request; the log has the detail
        log.exception("request %s: the model failed", request_id)
        return error(500, "The model failed on this request.", request_id)


async def _no_rows() -> list:
    """What scoring gives a request none of whose records has anything to score."""
    return []
