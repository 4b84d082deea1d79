"""The answer to an /invocations request once the model scored it: each text's top emojis in the form the
client asked for (JSON, JSON Lines or CSV), the words behind them when asked, and a copy for traffic
capture."""
import asyncio

from fastapi.responses import Response

from emoji_reco.serving import payloads
from emoji_reco.serving.capture import Capture
from emoji_reco.serving.invocation import Asked


def placed(rows: list, kept: list[int], total: int) -> list:
    """The model's rows for the `kept` texts at their places among `total`, None at the others'."""
    out = [None] * total
    for i, row in zip(kept, rows):
        out[i] = row
    return out


def explanations(predictor, texts: list[str], answers: list[list[dict]]) -> list[dict] | None:
    """For each text, the words behind each emoji of its answer (model/explain.py); None for a model without
    an n-gram half."""
    explainer = predictor.explainer
    if explainer is None:
        return None
    return [None if answer is None else explainer.explain(text, [a["emoji"] for a in answer])
            for text, answer in zip(texts, answers)]


async def render(asked: Asked, rows: list, loaded, accept: str | None, capture: Capture | None):
    """The response for `asked` from the `loaded` model's `rows` (one per kept text): a dict FastAPI
    serializes, or a Response of lines."""
    logits = placed(rows, asked.kept, len(asked.texts))
    k = min(asked.k, len(loaded.emojis))
    lines = payloads.render_lines(logits, loaded.emojis, k, asked.raw, loaded.version, accept)
    reply = None if lines else payloads.response(logits, loaded.emojis, k, asked.raw, loaded.version)
    if asked.explain and reply:
        reply["explanations"] = await asyncio.get_running_loop().run_in_executor(
            None, explanations, loaded.predictor, asked.texts, payloads.top_k(logits, loaded.emojis, k))
    if capture:  # the JSON answer, whatever form the client asked for
        capture.record(asked.body, asked.content_type,
                       reply or payloads.response(logits, loaded.emojis, k, asked.raw, loaded.version))
    return Response(lines[0], media_type=lines[1]) if lines else reply
