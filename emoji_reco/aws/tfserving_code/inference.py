"""Pre/post-processing for the SageMaker TensorFlow Serving image (its `code/inference.py` contract).

Requests and responses are the same as emoji-reco's own server: texts in (JSON, text/plain, text/csv), top-k
emojis out. Options come in the X-Amzn-SageMaker-Custom-Attributes header: `k=5`, `raw=logits`.
Tokenization is the training tokenizer (tokenizer/tokenizer.json beside this file) after the same cleaning.
"""
import json
import os
import sys

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # payloads.py and cleaning.py ship beside this file

import payloads  # noqa: E402
from cleaning import clean_text, is_empty, tokenizer_input  # noqa: E402

METADATA = json.load(open(os.path.join(HERE, "metadata.json"), encoding="utf-8"))
LABELS = json.load(open(os.path.join(HERE, "labels.json"), encoding="utf-8"))
EMOJIS = [LABELS[k] for k in sorted(LABELS, key=int)]
MAX_TEXTS = int(os.environ.get("EMOJI_RECO_MAX_TEXTS", 256))

TOKENIZER = Tokenizer.from_file(os.path.join(HERE, "tokenizer", "tokenizer.json"))
TOKENIZER.no_padding()
TOKENIZER.enable_truncation(max_length=METADATA["max_length"])


def _options(context) -> dict:
    attributes = getattr(context, "custom_attributes", None) or ""
    return dict(part.strip().split("=", 1) for part in attributes.split(",") if "=" in part)


def encode(texts: list[str]) -> dict:
    """TF Serving's columnar request: int32 `input_ids` and `attention_mask`, padded to the longest text."""
    cap = METADATA["max_length"]
    ids = [e.ids for e in TOKENIZER.encode_batch([tokenizer_input(clean_text(t), cap) for t in texts])]
    width = max(len(row) for row in ids)
    return {"signature_name": "serving_default",
            "inputs": {"input_ids": [row + [0] * (width - len(row)) for row in ids],
                       "attention_mask": [[1] * len(row) + [0] * (width - len(row)) for row in ids]}}


def input_handler(data, context):
    """Request body → the JSON TF Serving's REST API takes. A bad request is answered with a 4xx by the
    image."""
    body = data.read() if hasattr(data, "read") else data
    texts = payloads.parse_texts(body if isinstance(body, bytes) else str(body).encode("utf-8"),
                                 context.request_content_type, MAX_TEXTS, is_empty)
    options = _options(context)
    payloads.parse_k(options.get("k"), 3, len(EMOJIS))  # refuse a bad k before the model runs
    if payloads.explain_requested(body if isinstance(body, bytes) else str(body).encode("utf-8"),
                                  context.request_content_type):
        raise payloads.BadRequest("\"explain\" needs emoji-reco's own inference image "
                                  "(sagemaker.endpoint.image); "
                                  "the TF Serving image only predicts.")
    return json.dumps(encode(texts))


def output_handler(response, context):
    """TF Serving's answer → our response: top-k emojis per text, or raw logits."""
    if response.status_code != 200:
        raise ValueError(response.content.decode("utf-8", "replace"))
    logits = json.loads(response.content)["outputs"]["logits"]
    options = _options(context)
    k = payloads.parse_k(options.get("k"), 3, len(EMOJIS))
    answer = payloads.response(logits, EMOJIS, k, options.get("raw") == "logits", METADATA.get("version"))
    return json.dumps(answer, ensure_ascii=False), "application/json"
