"""The server's parts, each alone: admission holds its limit and counts what it sheds; a request is parsed
into what it asks (or refused, or told no model is ready); an answer is rendered in the form asked, at each
text's place."""
import asyncio
import json

import pytest
from starlette.requests import Request

from emoji_reco.serving import invocation, payloads, rendering
from emoji_reco.serving.admission import Admission
from emoji_reco.serving.metrics import Metrics
from emoji_reco.serving.serve_settings import ServeSettings
from emoji_reco.serving.served_model import Loaded
from helpers.serving import metric


@pytest.fixture(scope="module")
def tiny_predictor(tiny_bundle):
    from emoji_reco.model.bundle import Predictor

    return Predictor(tiny_bundle[1])


def samples(metrics: Metrics) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(metrics.exposition().decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}


def test_admission_takes_up_to_its_limit_sheds_the_next_and_frees_a_place_on_leave():
    metrics = Metrics()
    admission = Admission(2, metrics)
    assert admission.enter() and admission.enter() and not admission.enter()
    assert metric(samples(metrics), "emoji_reco_shed_requests_total", reason="open_requests") == 1
    assert metric(samples(metrics), "emoji_reco_open_requests") == 2
    admission.leave()
    assert admission.enter() and admission.open == 2
    assert metric(samples(metrics), "emoji_reco_shed_requests_total", reason="open_requests") == 1


def request(body: bytes, content_type="application/json", query=b"") -> Request:
    scope = {"type": "http", "method": "POST", "path": "/invocations", "query_string": query,
             "headers": [(b"content-type", content_type.encode())], "state": {"request_id": "r1"}}
    return Request(scope)


class Model:
    def __init__(self, current):
        self.current = current


def test_a_request_is_parsed_into_what_it_asks_or_refused_or_told_no_model_is_ready(tiny_predictor):
    settings = ServeSettings(max_request_tokens=0)
    loaded = Model(Loaded(tiny_predictor, "v1", tiny_predictor.emojis))
    body = json.dumps({"instances": ["so hyped", "ugh monday"], "explain": True}).encode()
    asked = asyncio.run(invocation.parse(request(body, query=b"k=2&raw=logits"), body, settings, loaded))
    assert (asked.texts, asked.kept, asked.k, asked.raw,
            asked.explain) == (["so hyped", "ugh monday"], [0, 1], 2,
                                                                            True, True)
    with pytest.raises(payloads.BadRequest):
        asyncio.run(invocation.parse(request(b"{nope"), b"{nope", settings, loaded))
    with pytest.raises(invocation.NotReady):
        asyncio.run(invocation.parse(request(body), body, settings, Model(None)))


def test_an_answer_is_rendered_at_each_texts_place_in_the_form_asked(tiny_predictor):
    loaded = Loaded(tiny_predictor, "v1", tiny_predictor.emojis)
    texts = ["so hyped", "", "ugh monday"]
    rows = tiny_predictor.logits([texts[0], texts[2]]).tolist()
    asked = invocation.Asked(texts, [0, 2], 2, False, False, b"", "application/json")
    reply = asyncio.run(rendering.render(asked, rows, loaded, None, None))
    expected = payloads.response(rendering.placed(rows, [0, 2], 3), loaded.emojis, 2, False, "v1")
    assert reply == expected and reply["predictions"][1] is None and len(reply["predictions"][0]) == 2
    lines = asyncio.run(rendering.render(asked, rows, loaded, "application/jsonlines", None))
    assert lines.media_type == "application/jsonlines" and len(lines.body.decode().splitlines()) == 3


def test_only_a_request_that_could_exceed_the_token_budget_is_priced(tiny_predictor):
    priced = []

    class Counting:
        metadata = tiny_predictor.metadata

        def token_count(self, texts, limit=None):
            priced.append(len(texts))
            return tiny_predictor.token_count(texts, limit)

    cap, within = tiny_predictor.metadata["max_length"], invocation.within_token_budget
    asked = request(b"")
    asked.state.cpu_s = 0.0
    asyncio.run(within(asked, Counting(), ["word " * 500] * 2, 2 * cap))  # at most 2 x max_length
    assert priced == []
    asyncio.run(within(asked, Counting(), ["so hyped"] * 3, 2 * cap))  # could be 3 x max_length: priced
    assert priced == [3]
    with pytest.raises(payloads.BadRequest) as refused:
        asyncio.run(within(asked, Counting(), ["word " * 500] * 3, 2 * cap))
    assert refused.value.status == 413 and priced == [3, 3] and asked.state.cpu_s > 0
