"""The model archive for SageMaker's TensorFlow Serving image, and its code/inference.py handlers run
in-process against the real SavedModel, fed what TF Serving would feed them."""
import importlib.util
import json
import tarfile
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from emoji_reco.aws import tfserving
from emoji_reco.data import dataset, demo
from emoji_reco.data.cleaning import clean_text, is_empty
from emoji_reco.model import bundle, tfrecords, tokenization
from emoji_reco.serving import payloads

TRICKY = ["@user check https://t.co/x &amp; more", "CAPS and   spaces\t\n", "emoji inside 😂 text ❤️",
          "ünïcödé façade",
          "word " * 100, "日本語のテキスト", "a", "!!!???", "line\u2028separator", "tab\tand\x00nul"]


@pytest.fixture(scope="module")
def archive(tiny_bundle, tmp_path_factory):
    _, folder = tiny_bundle
    root = tmp_path_factory.mktemp("tfs")
    tarball = tfserving.archive(folder, root / "model.tar.gz", "v7")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        tar.extractall(root / "model", filter="data")
    return names, root / "model"


@pytest.fixture(scope="module")
def handlers(archive):
    _, model = archive
    spec = importlib.util.spec_from_file_location("emoji_reco_tfs_inference", model / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_archive_has_the_layout_the_image_expects(archive):
    names, model = archive
    for name in ("1/saved_model.pb", "1/variables/variables.index", "code/inference.py",
                 "code/requirements.txt",
                 "code/payloads.py", "code/cleaning.py", "code/tokenizer/tokenizer.json", "code/labels.json"):
        assert name in names
    assert not any(n.startswith(("/", "..")) for n in names)
    requirements = (model / "code" / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in requirements} == {"tokenizers"} and all("==" in r for r in requirements)


def tf_serving(model_dir, request_json: str):
    """What TF Serving's REST predict does with the columnar request: run the signature, answer {"outputs":
    ...}."""
    request = json.loads(request_json)
    signature = tf.saved_model.load(str(model_dir / "1")).signatures[request["signature_name"]]
    outputs = signature(**{k: tf.constant(v, dtype=tf.int32) for k, v in request["inputs"].items()})
    answer = {"outputs": {k: v.numpy().tolist() for k, v in outputs.items()}}
    return SimpleNamespace(status_code=200, content=json.dumps(answer).encode())


@pytest.mark.parametrize("body, content_type, attributes, k, raw", [
    (json.dumps(["so hyped", "ugh monday", "word " * 80]).encode(), "application/json", "", 3, False),
    (b"first line\nsecond line\n", "text/plain", "k=5", 5, False),
    (b"text\nfirst\nsecond\n", "text/csv; header=present", "raw=logits", 3, True),
])
def test_handlers_answer_like_our_server(archive, handlers, tiny_bundle, body, content_type, attributes, k,
                                         raw):
    _, model = archive
    _, folder = tiny_bundle
    context = SimpleNamespace(request_content_type=content_type, custom_attributes=attributes,
                              accept_header="application/json")
    answer, answer_type = handlers.output_handler(tf_serving(model, handlers.input_handler(body, context)),
                                                  context)
    assert answer_type == "application/json"
    answer = json.loads(answer)
    texts = payloads.parse_texts(body, content_type, 256, is_empty)
    ours = payloads.response(bundle.Predictor(folder).logits(texts).tolist(), demo.EMOJIS, k, raw, "v7")
    assert answer.keys() == ours.keys() and answer["version"] == "v7"
    if "logits" in ours:
        np.testing.assert_allclose(answer["logits"], ours["logits"], atol=1e-3)
    else:
        for theirs, mine in zip(answer["predictions"], ours["predictions"], strict=True):
            assert [p["emoji"] for p in theirs] == [p["emoji"] for p in mine]
            np.testing.assert_allclose([p["probability"] for p in theirs], [p["probability"] for p in mine],
                                       atol=1e-3)


def test_handlers_refuse_bad_requests_like_our_server(handlers):
    context = SimpleNamespace(request_content_type="application/json", custom_attributes="k=99")
    with pytest.raises(handlers.payloads.BadRequest, match="k must be between"):
        handlers.input_handler(b'["x"]', context)
    context.custom_attributes = ""
    with pytest.raises(handlers.payloads.BadRequest, match="Malformed JSON"):
        handlers.input_handler(b"[oops", context)
    with pytest.raises(handlers.payloads.BadRequest, match="needs emoji-reco's own inference image"):
        handlers.input_handler(b'{"instances": ["fine"], "explain": true}', context)
    with pytest.raises(handlers.payloads.BadRequest, match=r"instances\[1\] is empty"):
        handlers.input_handler(b'{"instances": ["fine", "  \\u0000 "]}', context)


def test_csv_texts_of_any_length_and_line_ending_are_read_whole():
    body = b"text\r" + b"y" * 200_000 + b'\r\n"two\rlines"\rlast'
    assert payloads.parse_texts(body, "text/csv; header=present", 8,
                                is_empty) == ["y" * 200_000, "two\rlines", "last"]


def test_tokenization_in_the_image_matches_training_exactly(handlers, tmp_path, tiny_model):
    texts = demo.demo_raw_tweets(300, seed=5).text.tolist() + TRICKY
    cleaned = [clean_text(t) for t in texts]
    keep = [i for i, t in enumerate(cleaned) if t]
    frame = dataset.pd.DataFrame({"text": [cleaned[i] for i in keep], "label": 0})
    tok_dir = tokenization.save_fast_tokenizer(tiny_model, tmp_path / "tok")
    written = tfrecords.convert_shard({"train": frame}, 0, 1, tok_dir, 32, 64, str(tmp_path / "rec"))
    trained, _ = tfrecords.read_all([written[0]["uri"]])
    served = handlers.encode([texts[i] for i in keep])["inputs"]
    unpadded = [row[: sum(mask)] for row, mask in zip(served["input_ids"], served["attention_mask"],
                                                      strict=True)]
    assert len(unpadded) >= 300 and unpadded == trained
