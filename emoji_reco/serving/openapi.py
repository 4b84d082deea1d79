"""The OpenAPI description of /invocations (served at /openapi.json), with a server's limits."""

_PREDICTION = {"type": "object", "properties": {"emoji": {"type": "string"},
                                                "probability": {"type": "number"}}}
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "error": {"type": "string"}, "request_id": {"type": "string"}}}}}}


def invocations_api(settings) -> dict:
    """The OpenAPI description of /invocations, with this server's limits."""
    strings = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": settings.max_texts}
    texts = {"oneOf": [
        strings,
        {"type": "object", "required": ["instances"], "properties": {"instances": strings}},
        {"type": "object", "required": ["inputs"],
         "properties": {"inputs": {"oneOf": [{"type": "string"}, strings]}}},
    ]}
    return {
        "parameters": [
            {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1},
             "description": "emojis per text (default 3)"},
            {"name": "raw", "in": "query", "schema": {"type": "string", "enum": ["logits"]},
             "description": "raw scores instead"},
            {"name": "X-Top-K", "in": "header", "schema": {"type": "integer", "minimum": 1}},
        ],
        "requestBody": {"required": True, "description": f"at most {settings.max_body_bytes} bytes",
                        "content": {
            "application/json": {"schema": texts},
            "text/plain": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/jsonlines": {"schema": {"type": "string"}}}},
        "responses": {
            "200": {"description": "top emojis per text, or raw logits; with `Accept: "
                                   "application/jsonlines` one such "
                                   "answer per text and line, with `Accept: text/csv` "
                                   "emoji_1,probability_1,… per "
                                   "text and row (SageMaker Batch Transform; there a record "
                                   "with nothing to score "
                                   "gets a line of its own saying so)", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "version": {"type": "string"},
                    "predictions": {"type": "array", "items": {"type": "array", "items": _PREDICTION}},
                    "labels": {"type": "array", "items": {"type": "string"}},
                    "logits": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}}}},
                "application/jsonlines": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}}}},
            "400": {"description": "the request can't be answered", **_ERROR},
            "403": {"description": "foreign Host or cross-site Origin", **_ERROR},
            "408": {"description": f"headers or body slower than {settings.header_timeout_s:g} s / "
                                   f"{settings.body_timeout_s:g} s", **_ERROR},
            "413": {"description": f"payload over {settings.max_body_bytes} bytes, or texts over "
                                   f"{settings.max_request_tokens} tokens in all", **_ERROR},
            "415": {"description": "unsupported content type", **_ERROR},
            "429": {"description": f"over {settings.max_refusals_per_client_s:g} refused "
                                   f"requests a second from "
                                   "this address; retry after Retry-After seconds", **_ERROR},
            "500": {"description": "the model failed; the server log has the detail under the request id",
                    **_ERROR},
            "503": {"description": "busy (retry after Retry-After seconds), past the "
                                   "deadline, or no model yet",
                    **_ERROR},
        },
    }
