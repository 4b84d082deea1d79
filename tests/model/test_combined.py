"""The combined model on real TensorFlow: the in-graph n-gram half against scikit-learn, the mixture in every
signature, the weight's choice, and the bundle format's guard."""
import json
import shutil

import numpy as np
import pytest

import emoji_reco  # noqa: F401  (Keras 2 before TensorFlow)
from emoji_reco.data import demo
from emoji_reco.data.cleaning import clean_text
from emoji_reco.errors import ModelError
from emoji_reco.model import bundle, ensemble, ngrams, packing, tokenization


def sklearn_logits(params, rows):
    x, _ = ngrams.matrix(rows, params["vocab"], params["buckets"], params["idf"])
    return x @ params["coef"] + params["intercept"]


def test_the_graph_scores_padded_and_packed_rows_as_scikit_learn_does(tiny_ngram):
    import tensorflow as tf

    params, ids, _ = tiny_ngram
    held_out = ids[500:] + [[101, 102], [101, 7592, 7592, 7592, 102]]  # no words; one word thrice
    expected = sklearn_logits(params, held_out)
    head = ngrams.head(params)
    input_ids, mask = tokenization.pad(held_out)
    np.testing.assert_allclose(head(tf.constant(input_ids), tf.constant(mask))[:, 1].numpy(), expected,
                               atol=1e-5)
    packed = packing.pack(held_out, 32)
    segments, starts = tf.constant(packed["segments"]), tf.constant(packed["starts"])
    text = tf.stack([starts[:, 0], tf.gather_nd(segments, starts)], axis=1)
    # texts really share rows, and pairs stop at their edge
    assert packed["input_ids"].shape[0] < len(held_out) / 3
    np.testing.assert_allclose(tf.gather_nd(head(tf.constant(packed["input_ids"]), segments), text).numpy(),
                               expected,
                               atol=1e-5)
    # A pair's hash and a feature seen once in training (idf 0) behave as in scikit-learn's own vectorizer
    # terms.
    assert ngrams.feature_ids([101, 7592, 102], 30522, 4096).tolist() == [
        101, 7592, 102, 30522 + (101 * 30522 + 7592) % 4096, 30522 + (7592 * 30522 + 102) % 4096]
    assert (params["idf"] == 0).sum() > 0 and params["coef"].shape == (30522 + 4096, len(demo.EMOJIS))


@pytest.mark.parametrize("classes", [2, 3])
def test_the_fit_equals_scikit_learn_on_every_feature_and_unseen_classes_never_score(tiny_ngram, classes):
    from sklearn.linear_model import LogisticRegression

    _, ids, labels = tiny_ngram
    train, labels = ids[:300], labels[:300] % classes  # of 4 emojis, some never seen in training
    params = ngrams.fit(train, labels, 4, 30522, 4096, 2.0)
    # scikit-learn on all 34,618 columns, idf-0 ones included
    everything, _ = ngrams.matrix(train, 30522, 4096)
    reference = LogisticRegression(C=2.0, max_iter=2000).fit(everything, labels)
    probs = ensemble.softmax(sklearn_logits(params, ids[300:]))
    np.testing.assert_allclose(probs[:, :classes], reference.predict_proba(ngrams.matrix(
        ids[300:], 30522, 4096, params["idf"])[0]), atol=1e-4)
    assert probs[:, classes:].max() < 1e-6


def test_every_signature_serves_the_mixture_and_parts_shows_each_half(tiny_bundle, tiny_ngram):
    import tensorflow as tf

    encoder, folder = tiny_bundle
    params = tiny_ngram[0]
    texts = demo.demo_tweets(60, seed=9).TWEET.tolist() + ["", "word " * 100]
    predictor = bundle.Predictor(folder, batch_size=512)
    ids = tokenization.encode(predictor.tokenizer, [clean_text(t) for t in texts])
    alone = np.concatenate([encoder(input_ids=np.array([r]), training=False).logits.numpy() for r in ids])
    expected = np.log(0.7 * ensemble.softmax(alone) + 0.3 * ensemble.softmax(sklearn_logits(params, ids)))
    np.testing.assert_allclose(predictor.logits(texts), expected, atol=1e-4)  # one mixed batch: packed
    np.testing.assert_allclose(bundle.Predictor(folder, pack=False).logits(texts), expected, atol=1e-4)
    parts = predictor.parts(texts)
    np.testing.assert_allclose(parts["encoder"], ensemble.softmax(alone), atol=1e-5)
    np.testing.assert_allclose(parts["combined"], 0.7 * parts["encoder"] + 0.3 * parts["ngram"], atol=1e-5)
    signatures = tf.saved_model.load(str(folder / bundle.SAVED_MODEL)).signatures
    assert set(signatures) == {"serving_default", packing.SIGNATURE, bundle.PARTS}
    assert bundle.read_metadata(folder)["format"] == bundle.FORMAT == 2


def test_the_weight_is_the_validation_log_loss_minimum():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    truth = np.eye(4)[labels] * 3
    sharp, noise = truth + rng.normal(0, 1.5, truth.shape), rng.normal(0, 1, truth.shape)
    # a useless partner gets (almost) nothing
    assert ensemble.choose_weight(sharp, noise, labels)["weight"] <= 0.1
    assert ensemble.choose_weight(noise, sharp, labels)["weight"] >= 0.9
    # Two views with independent errors: the mixture beats both, with a weight inside the range.
    other = truth + rng.normal(0, 1.5, truth.shape)
    choice = ensemble.choose_weight(sharp, other, labels)
    assert 0.2 <= choice["weight"] <= 0.8
    assert choice["log_loss"][str(choice["weight"])] < min(choice["log_loss"]["0.0"],
                                                           choice["log_loss"]["1.0"])


def test_a_newer_bundle_format_is_refused_with_what_to_do(tmp_path, tiny_bundle):
    folder = tmp_path / "future"
    shutil.copytree(tiny_bundle[1], folder)
    metadata = bundle.read_metadata(folder)
    (folder / bundle.METADATA).write_text(json.dumps({**metadata, "format": 3}))
    with pytest.raises(ModelError, match="format-3 model bundle; this emoji-reco reads "
                                         "formats up to 2. Upgrade"):
        bundle.Predictor(folder)
    (folder / bundle.METADATA).write_text(json.dumps({k: v for k, v in metadata.items() if k != "format"}))
    # format 1 predates the field, and is read as before
    assert bundle.Predictor(folder).logits(["hello"]).shape[0] == 1


@pytest.mark.slow
def test_training_with_a_seed_gives_the_same_combined_model(tmp_path, tiny_model):
    import tensorflow as tf

    from emoji_reco import settings
    from emoji_reco.data import dataset
    from emoji_reco.model import tfrecords, training

    config = settings.typed(settings.with_overrides(settings.defaults(), {
        "model.base": str(tiny_model), "model.max_length": 32, "model.ngram.buckets": 4096, "demo.rows": 400,
        "train.epochs": 1, "train.batch_size": 16, "train.learning_rate": 1e-3,
        "train.bucket_boundaries": [8, 16]}))
    prepared = dataset.prepare(config.data, config.demo)
    records = tfrecords.convert_shard(prepared.splits, 0, 1, tiny_model, 32, 256, str(tmp_path / "records"))
    texts = prepared.splits["test"].text.tolist()
    answers = []
    for attempt in ("a", "b"):
        result = training.train_bundle(records, prepared.emojis, config, str(tmp_path / attempt),
                                       {"run": attempt})
        predictor = bundle.Predictor(tmp_path / attempt)
        answers.append((predictor.logits(texts), result["ensemble"]))
    np.testing.assert_array_equal(answers[0][0], answers[1][0])
    assert answers[0][1] == {**answers[1][1], "seconds": answers[0][1]["seconds"]}
    saved = tf.train.list_variables(str(tmp_path / "a" / bundle.SAVED_MODEL / "variables" / "variables"))
    # the bundle is weights, not a checkpoint
    assert saved and not [name for name, _ in saved if "optimizer" in name]
    assert set(answers[0][1]["validation"]) == {"encoder", "ngram", "combined"}
