"""Request and response formats of the inference endpoint (ours and the TF Serving handlers alike).

Standard library only: `code/inference.py` in the TF Serving model archive ships a copy of this file.
"""
import csv
import io
import json
import math

JSON_LINES = ("application/jsonlines", "application/x-jsonlines")
CONTENT_TYPES = ("application/json", "text/plain", "text/csv", *JSON_LINES)


class BadRequest(Exception):
    """A request we can't answer; `status` is the HTTP status to send with the message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_texts(body: bytes, content_type: str | None, max_texts: int, is_empty,
                refuse_empty: bool = True) -> list[str]:
    """The texts a request asks about. A text with nothing left after cleaning (`is_empty`:
    `cleaning.is_empty`, the cleaning the model's input gets) is refused, by its index, with nothing of the
    request scored; with `refuse_empty` False it is kept, for an answer of its own (Batch Transform: one
    answer per record).

    application/json: a list of strings (or of {"text": ...}), {"instances": [...]} or {"inputs": ...};
    text/plain: one text per line, lines ending in \n or \r\n only (a U+2028 or a lone \r stays inside its
    text); text/csv: the first column, one text per record; the first record is a header only when the content
    type says so (`text/csv; header=present`, RFC 4180);
    application/jsonlines: one record per line, a string or {"text": ...} (SageMaker Batch Transform,
    SplitType=Line). Blank lines of CSV and JSON Lines are skipped, or with `refuse_empty` False kept as blank
    records.
    """
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype not in CONTENT_TYPES:
        raise BadRequest(f"Unsupported content type {ctype!r}: send {', '.join(CONTENT_TYPES)}.", 415)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The body is not valid UTF-8 ({exc.reason} at byte {exc.start}).") from exc
    name = "texts"
    if ctype == "application/json":
        texts, name = _json_texts(text)
    elif ctype in JSON_LINES:
        texts = [_json_line(line, n + 1) if line.strip() else "" for n, line in enumerate(text.splitlines())
                 if line.strip() or not refuse_empty]
    elif ctype == "text/plain":
        texts = [line.removesuffix("\r") for line in text.split("\n") if line.strip()]
    else:
        texts = _csv_texts(text, _csv_header(content_type), keep_blank=not refuse_empty)
    if not texts:
        raise BadRequest("No texts to score: send at least one.")
    if len(texts) > max_texts:
        raise BadRequest(f"Too many texts: {len(texts)} in one request, at most {max_texts}.")
    empty = [f"{name}[{i}]" for i, t in enumerate(texts) if refuse_empty and is_empty(t)]
    if empty:
        shown = ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise BadRequest(f"{shown} {'is' if len(empty) == 1 else 'are'} empty: nothing is "
                         f"left to score after "
                         "cleaning (spaces, control characters, mentions and links are "
                         "removed). Nothing was scored.")
    return texts


def _csv_header(content_type: str | None) -> bool:
    """Whether a text/csv body starts with a header: `header=present` (RFC 4180's parameter) says so."""
    params = (part.split("=", 1) for part in (content_type or "").split(";")[1:] if "=" in part)
    return any(k.strip().lower() == "header" and v.strip().strip('"').lower() == "present" for k, v in params)


def _csv_texts(text: str, header: bool, keep_blank: bool) -> list[str]:
    """The first column, one text per record; any line ending (a lone CR too) ends a record; any field length.
    A blank line is a blank record with `keep_blank`, else skipped."""
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row or keep_blank]
    return [row[0] if row else "" for row in rows[1 if header else 0:]]


def _json_line(line: str, n: int) -> str:
    """One JSON Lines record: a string, or an object with a string `text`."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"Line {n} is not JSON: {exc}.") from exc
    if isinstance(record, dict):
        record = record.get("text")
    if not isinstance(record, str):
        raise BadRequest(f'Line {n}: send a string or {{"text": "..."}} per line.')
    return record


def _json_texts(text: str) -> tuple[list[str], str]:
    """The texts, and what the request calls them: "instances", "inputs" or "texts" (a bare list)."""
    name = "texts"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"Malformed JSON: {exc}.") from exc
    except RecursionError as exc:  # "[" * 1000: nesting deeper than the parser's stack
        raise BadRequest("Malformed JSON: nested too deeply; send a flat list of strings.") from exc
    if isinstance(data, dict):
        name = next((key for key in ("instances", "inputs") if key in data), None)
        if name:
            data = data[name]
        else:
            raise BadRequest('A JSON object needs "instances" or "inputs"; or send a list of strings.')
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list):
        raise BadRequest("Send a JSON list of strings.")
    texts = []
    for i, item in enumerate(data):
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            item = item["text"]
        if not isinstance(item, str):
            raise BadRequest(f"{name}[{i}] is {type(item).__name__}, not a string.")
        texts.append(item)
    return texts, name


def explain_requested(body: bytes, content_type: str | None) -> bool:
    """Whether a JSON object body asks `"explain": true` (the words behind each answer; model/explain.py)."""
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype != "application/json" or b'"explain"' not in body:
        return False
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("explain") is True


def parse_k(value: str | None, default: int, labels: int) -> int:
    """How many emojis to return per text: 1 to the number of labels."""
    if value in (None, ""):
        return min(default, labels)
    try:
        k = int(value)
    except ValueError as exc:
        raise BadRequest(f"k must be a whole number, not {value!r}.") from exc
    if not 1 <= k <= labels:
        raise BadRequest(f"k must be between 1 and {labels}.")
    return k


UNSCORABLE = "nothing left to score after cleaning"


def top_k(logits: list[list[float] | None], emojis: list[str], k: int) -> list[list[dict] | None]:
    """For each row of scores, the `k` likeliest emojis with softmax probabilities, best first (None for a
    record that could not be scored)."""
    out = []
    for row in logits:
        if row is None:
            out.append(None)
            continue
        peak = max(row)
        exp = [math.exp(v - peak) for v in row]
        total = sum(exp)
        best = sorted(range(len(row)), key=lambda j: -row[j])[:k]
        out.append([{"emoji": emojis[j], "probability": round(exp[j] / total, 4)} for j in best])
    return out


def response(logits: list[list[float]], emojis: list[str], k: int, raw: bool, version: str | None) -> dict:
    """The JSON answer: top-k emojis per text, or with `raw` the logits in label order."""
    if raw:
        return {"version": version, "labels": emojis,
                "logits": [None if row is None else [round(float(v), 5) for v in row] for row in logits]}
    return {"version": version, "predictions": top_k(logits, emojis, k)}


def render_lines(logits: list[list[float]], emojis: list[str], k: int, raw: bool, version: str | None,
                 accept: str | None) -> tuple[str, str] | None:
    """(body, media type) when `accept` asks for one line per text, else None (the JSON answer). JSON Lines:
    each line is the answer a request of that one text gets. CSV: emoji_1,probability_1,… per row (with `raw`,
    the logits in label order), no header, so that SageMaker Batch Transform's AssembleWith=Line output holds
    one row per input record. A record that could not be scored (None) gets a line that says so: `{"error":
    ...}`, or the row `ERROR,<why>`."""
    wanted = (accept or "").split(";")[0].strip().lower()
    if wanted in JSON_LINES:
        return "".join(json.dumps({"version": version, "error": UNSCORABLE} if row is None else
                                  response([row], emojis, k, raw, version), ensure_ascii=False) + "\n"
                       for row in logits), wanted
    if wanted == "text/csv":
        out = io.StringIO()
        answers = logits if raw else top_k(logits, emojis, k)
        rows = [["ERROR", UNSCORABLE] if answer is None else
                [round(float(v), 5) for v in answer] if raw
                else [v for a in answer for v in (a["emoji"], a["probability"])]
                for answer in answers]
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue(), "text/csv"
    return None


def read_predictions(body: bytes) -> list[list[dict]]:
    """The `predictions` of an endpoint's answer (ours or the TF Serving handlers'); ValueError when it has
    none."""
    try:
        answer = json.loads(body)
        predictions = answer["predictions"]
        if not all(isinstance(row, list)
                   and all({"emoji", "probability"} <= set(p) for p in row) for row in predictions):
            raise TypeError("rows are not lists of {emoji, probability}")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"Not an emoji-reco answer ({exc}): {body[:200]!r}") from exc
    return predictions
