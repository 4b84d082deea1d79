"""Request and answer formats in-process (the server tests send them over HTTP): every content type, every
refusal with its status and message, and the answers' exact shape."""
import json
import math

import pytest

from emoji_reco.data.cleaning import is_empty
from emoji_reco.serving import payloads
from emoji_reco.serving.payloads import BadRequest, parse_texts

EMOJIS = ["😂", "🔥", "😭"]


def parse(body, ctype="application/json", max_texts=5, **kwargs):
    return parse_texts(body if isinstance(body, bytes) else body.encode(), ctype, max_texts, is_empty,
                       **kwargs)


def refused(body, ctype="application/json", max_texts=5, **kwargs) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse(body, ctype, max_texts, **kwargs)
    return caught.value


@pytest.mark.parametrize("body, ctype, texts", [
    ('["a", "b"]', "application/json", ["a", "b"]),
    ('["a", "b"]', None, ["a", "b"]),
    ('"just one"', "application/json", ["just one"]),
    ('{"instances": ["a", {"text": "b"}]}', "application/json; charset=utf-8", ["a", "b"]),
    ('{"inputs": "one"}', "APPLICATION/JSON", ["one"]),
    ("first\r\nsecond\n\n  \nthird\u2028still third\rand this", "text/plain",
     ["first", "second", "third\u2028still third\rand this"]),
    ('text,x\n"a, quoted",1\n\nplain\n', "text/csv", ["text", "a, quoted", "plain"]),
    ('text,x\n"a, quoted",1\n', 'text/csv; header="Present"', ["a, quoted"]),
    ('text\n"a\nb"\rnext', "text/csv; charset=utf-8; header=present", ["a\nb", "next"]),
    ('"a"\n\n{"text": "b"}\n', "application/jsonlines", ["a", "b"]),
    ('"a"\n', "application/x-jsonlines", ["a"]),
])
def test_every_content_type_gives_its_texts_in_order(body, ctype, texts):
    assert parse(body, ctype) == texts


def test_blank_records_are_kept_in_place_when_every_record_needs_an_answer():
    assert parse('"a"\n\n"b"\n', "application/jsonlines", refuse_empty=False) == ["a", "", "b"]
    assert parse("text\nx\n\ny\n", "text/csv; header=present", refuse_empty=False) == ["x", "", "y"]
    # unscorable, still there
    assert parse("x\n@mention\n", "text/csv", refuse_empty=False) == ["x", "@mention"]


@pytest.mark.parametrize("body, ctype, status, message", [
    ("[]", "application/xml", 415, "Unsupported content type 'application/xml': send "
                                   "application/json, text/plain, "
                                   "text/csv, application/jsonlines, application/x-jsonlines."),
    (b"\xff\xfe", "text/plain", 400, "The body is not valid UTF-8 (invalid start byte at byte 0)."),
    ("[", "application/json", 400, "Malformed JSON: Expecting value: line 1 column 2 (char 1)."),
    ("[" * 100000, "application/json", 400, "Malformed JSON: nested too deeply; send a "
                                            "flat list of strings."),
    ('{"texts": ["a"]}', "application/json", 400, 'A JSON object needs "instances" or '
                                                  '"inputs"; or send a list of '
                                                  "strings."),
    ("3", "application/json", 400, "Send a JSON list of strings."),
    ('{"instances": ["a", 3]}', "application/json", 400, "instances[1] is int, not a string."),
    ('[{"text": 1}]', "application/json", 400, "texts[0] is dict, not a string."),
    ("[]", "application/json", 400, "No texts to score: send at least one."),
    ("\n \n", "text/plain", 400, "No texts to score: send at least one."),
    ('["a","b","c","d","e","f"]', "application/json", 400, "Too many texts: 6 in one request, at most 5."),
    ('"a"\nnot json\n', "application/jsonlines", 400, "Line 2 is not JSON: Expecting value: line "
                                                      "1 column 1 (char 0)."),
    ('"a"\n5\n', "application/jsonlines", 400, 'Line 2: send a string or {"text": "..."} per line.'),
    ('{"inputs": ["ok", "  "]}', "application/json", 400, "inputs[1] is empty: nothing is "
                                                          "left to score after "
     "cleaning (spaces, control characters, mentions and links are removed). Nothing was scored."),
])
def test_a_bad_request_is_refused_with_its_status_and_reason(body, ctype, status, message):
    error = refused(body, ctype)
    assert (error.status, str(error)) == (status, message)


def test_empty_texts_are_named_ten_at_most_then_counted():
    error = refused(json.dumps(["ok"] + ["@x"] * 12), max_texts=20)
    assert str(error).startswith(", ".join(f"texts[{i}]" for i in range(1, 11)) + " and 2 more are empty:")
    assert str(refused('["@a", "@b"]')).startswith("texts[0], texts[1] are empty:")
    assert parse('["fine"]', max_texts=1) == ["fine"]  # exactly the limit


def test_a_csv_field_of_any_length_is_read_whole():
    long = "x" * 300_000
    assert parse(f'"{long}"\n', "text/csv") == [long]


def test_explain_is_asked_only_by_a_json_object_saying_true():
    ask = payloads.explain_requested
    assert ask(b'{"instances": ["a"], "explain": true}', None)
    assert ask(b'{"explain": true}', "application/json; charset=utf-8")
    assert not ask(b'{"instances": ["a"], "explain": 1}', "application/json")
    assert not ask(b'{"instances": ["a"], "explain": "true"}', "application/json")
    assert not ask(b'["explain"]', "application/json") and not ask(b'{"explain": tru', "application/json")
    assert not ask(b'{"explain": true}', "text/plain") and not ask(b'{"instances": []}', "application/json")
    assert not ask(b'"explain"' + b"[" * 100000, "application/json")


def test_k_defaults_to_at_most_the_labels_and_is_checked():
    assert payloads.parse_k(None, 3, 10) == 3 and payloads.parse_k("", 3,
                                                                   2) == 2 and payloads.parse_k("2", 3,
                                                                                                10) == 2
    assert payloads.parse_k("1", 3, 10) == 1 and payloads.parse_k("10", 3, 10) == 10
    for value, message in (("x", "k must be a whole number, not 'x'."), ("0", "k must be between 1 and 10."),
                           ("11", "k must be between 1 and 10.")):
        with pytest.raises(BadRequest, match="^" + message.replace("(", r"\(").replace(".", r"\.") + "$"):
            payloads.parse_k(value, 3, 10)


def test_top_k_is_the_softmax_best_first_and_none_for_an_unscorable_record():
    logits = [[0.0, 2.0, 1.0], None, [5.0, 5.0, -1.0]]
    answers = payloads.top_k(logits, EMOJIS, 2)
    total = sum(math.exp(v) for v in logits[0])
    assert answers[0] == [{"emoji": "🔥", "probability": round(math.exp(2) / total, 4)},
                          {"emoji": "😭", "probability": round(math.exp(1) / total, 4)}]
    assert answers[1] is None and [a["emoji"] for a in answers[2]] == ["😂", "🔥"]  # a tie keeps label order
    assert answers[2][0]["probability"] == round(1 / (2 + math.exp(-6)), 4)
    # no overflow
    assert payloads.top_k([[1000.0, 0.0, 0.0]], EMOJIS, 1) == [[{"emoji": "😂", "probability": 1.0}]]


def test_the_json_answer_is_top_k_or_the_raw_logits_rounded():
    assert payloads.response([[0.0, 1.0, 0.0]], EMOJIS, 1, False, "7") == {
        "version": "7", "predictions": [[{"emoji": "🔥", "probability": round(math.e / (2 + math.e), 4)}]]}
    assert payloads.response([[0.123456789, 1.0, -2.0], None], EMOJIS, 1, True, None) == {
        "version": None, "labels": EMOJIS, "logits": [[0.12346, 1.0, -2.0], None]}


def test_one_line_per_record_in_json_lines_or_csv_and_an_unscorable_line_that_says_so():
    logits = [[0.0, 1.0, 0.0], None]
    body, media = payloads.render_lines(logits, EMOJIS, 2, False, "v", "application/jsonlines; charset=utf-8")
    lines = [json.loads(line) for line in body.splitlines()]
    assert media == "application/jsonlines" and body.endswith("\n") and len(lines) == 2
    assert lines[0] == payloads.response([logits[0]], EMOJIS, 2, False, "v")
    assert lines[1] == {"version": "v", "error": payloads.UNSCORABLE}
    assert payloads.render_lines(logits, EMOJIS, 1, False, "v",
                                 "application/x-jsonlines")[1] == "application/x-jsonlines"
    body, media = payloads.render_lines(logits, EMOJIS, 2, False, "v", "Text/CSV")
    top = payloads.top_k(logits[:1], EMOJIS, 2)[0]
    assert media == "text/csv" and body == (f"🔥,{top[0]['probability']},😂,{top[1]['probability']}\n"
                                            f"ERROR,{payloads.UNSCORABLE}\n")
    body, _ = payloads.render_lines([[0.1234567, 1.0, -2.0], None], EMOJIS, 2, True, "v", "text/csv")
    assert body == f"0.12346,1.0,-2.0\nERROR,{payloads.UNSCORABLE}\n"
    assert payloads.render_lines(logits, EMOJIS, 2, False, "v", "application/json") is None
    assert payloads.render_lines(logits, EMOJIS, 2, False, "v", None) is None


def test_an_endpoints_answer_is_read_back_or_refused():
    good = {"version": "1", "predictions": [[{"emoji": "🔥", "probability": 0.5}]]}
    assert payloads.read_predictions(json.dumps(good).encode()) == good["predictions"]
    for bad in (b"<html>", b'{"no": 1}', b'{"predictions": [3]}', b'{"predictions": [[{"emoji": "x"}]]}',
                b'{"predictions": 5}'):
        with pytest.raises(ValueError, match="^Not an emoji-reco answer"):
            payloads.read_predictions(bad)


def test_an_empty_line_of_text_is_named_texts_and_ten_are_listed_before_counting():
    assert str(refused("fine\n@someone\n", "text/plain")).startswith("texts[1] is empty:")
    ten, eleven = (json.dumps(["ok"] + ["@x"] * n) for n in (10, 11))
    assert str(refused(ten, max_texts=20)).startswith(", ".join(f"texts[{i}]" for i in range(1, 11))
                                                      + " are empty:")
    assert " and 1 more are empty:" in str(refused(eleven, max_texts=20))


@pytest.mark.parametrize("ctype, header", [
    ("text/csv;header=present", True), ("text/csv; Header = Present ", True),
    ("text/csv; header=absent", False),
    ("text/csv; charset=present", False), ("text/csv; header=present=x", False),
    ("text/csv; header=presentX", False),
    ("text/csv; header", False)])
def test_a_csv_header_is_skipped_only_when_the_content_type_declares_it(ctype, header):
    assert parse("text\nfirst\n", ctype) == (["first"] if header else ["text", "first"])


def test_a_line_break_inside_a_quoted_csv_field_is_kept_as_sent():
    assert parse('"one\r\ntwo",x\r\nthree\r\n', "text/csv") == ["one\r\ntwo", "three"]


def test_json_lines_answers_keep_emojis_as_they_are_and_raw_logits_per_line():
    body, _ = payloads.render_lines([[0.0, 1.0, 0.0]], EMOJIS, 1, False, "v", "application/jsonlines")
    assert "🔥" in body and "\\u" not in body
    body, _ = payloads.render_lines([[0.5, 1.0, 0.0]], EMOJIS, 1, True, "v", "application/jsonlines")
    assert json.loads(body) == {"version": "v", "labels": EMOJIS, "logits": [[0.5, 1.0, 0.0]]}


def test_a_refused_answer_says_what_is_wrong_and_shows_the_first_200_bytes():
    with pytest.raises(ValueError) as caught:
        payloads.read_predictions(b'{"predictions": [3]}')
    assert "(rows are not lists of {emoji, probability})" in str(caught.value)
    long = b'{"predictions": 1' + b"0" * 300 + b"}"
    with pytest.raises(ValueError) as caught:
        payloads.read_predictions(long)
    assert str(caught.value).endswith(f": {long[:200]!r}")
