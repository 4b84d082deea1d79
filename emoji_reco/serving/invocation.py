"""What one /invocations request goes through besides the model: reading its body within the limit, pricing its
tokens (charging the CPU that took to its client), explaining its answer, and the answer when it is refused."""
import asyncio
import time

from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from emoji_reco.serving import payloads
from emoji_reco.serving.responses import error


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
    """Refuse (413) a request that would cost the model more tokens than one request may, before it queues; the
    CPU its pricing took is added to `request.state.cpu_s`, for the refusal budget."""
    tokens, seconds = await asyncio.get_running_loop().run_in_executor(None, priced, predictor, texts, limit)
    request.state.cpu_s += seconds
    if tokens > limit:
        raise payloads.BadRequest(
            f"These {len(texts)} texts are at least {tokens} tokens; a request may have at most {limit} (a text "
            f"counts up to {predictor.metadata['max_length']}). Send them in smaller requests.", 413)


def scorable(texts: list[str], is_empty, every_record: bool) -> list[int]:
    """The indices of the texts the model scores: all (parsing refused empty ones), or with `every_record`
    (Batch Transform) those with something left after cleaning; the others get an answer saying so."""
    return [i for i, text in enumerate(texts) if not (every_record and is_empty(text))]


def placed(rows: list, kept: list[int], total: int) -> list:
    """The model's rows for the `kept` texts at their places among `total`, None at the others'."""
    out = [None] * total
    for i, row in zip(kept, rows):
        out[i] = row
    return out


def explanations(predictor, texts: list[str], answers: list[list[dict]]) -> list[dict] | None:
    """For each text, the words behind each emoji of its answer (model/explain.py); None for a model without an
    n-gram half."""
    explainer = predictor.explainer
    if explainer is None:
        return None
    return [None if answer is None else explainer.explain(text, [a["emoji"] for a in answer])
            for text, answer in zip(texts, answers)]


def refused(exc: Exception, request_id: str) -> Response:
    if isinstance(exc, ClientDisconnect):
        return error(499, "Client closed the request.", request_id)
    return error(exc.status, str(exc), request_id)


async def client_left(request: Request) -> None:
    """Returns when the client disconnects (call after the body was read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
