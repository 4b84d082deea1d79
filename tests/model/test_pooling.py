"""Mean pooling (`model.pooling: "mean"`) on a real tiny BERT: the classifier reads the masked mean of the
last hidden states, padding changes nothing, the packed signature scores each text as if alone, it trains (the
pooler untouched), and a wrong choice or a non-BERT model is refused by name. Label smoothing's loss, by its
formula."""
import numpy as np
import pytest

import emoji_reco  # noqa: F401  (Keras 2 before TensorFlow)
from emoji_reco.data import demo
from emoji_reco.data.cleaning import clean_text
from emoji_reco.errors import ConfigError, ModelError
from emoji_reco.model import base_model, bundle, ngrams, tokenization
from emoji_reco.settings import parse

EMOJIS = demo.EMOJIS


@pytest.fixture(scope="module")
def mean_model(tiny_model):
    return base_model.load_classifier(tiny_model, EMOJIS, "mean")


def test_the_classifier_reads_the_masked_mean_and_padding_changes_nothing(mean_model):
    ids = np.array([[101, 2023, 2003, 102, 0, 0]], np.int32)
    mask = (ids > 0).astype(np.int32)
    hidden = mean_model.bert(input_ids=ids, attention_mask=mask, training=False).last_hidden_state.numpy()
    expected = mean_model.classifier(hidden[:, :4].mean(axis=1)).numpy()
    padded = mean_model(input_ids=ids, attention_mask=mask, training=False).logits.numpy()
    alone = mean_model(input_ids=ids[:, :4], attention_mask=mask[:, :4], training=False).logits.numpy()
    np.testing.assert_allclose(padded, expected, atol=1e-5)
    np.testing.assert_allclose(padded, alone, atol=1e-5)
    # auto: a BERT
    assert base_model.load_classifier(mean_model.config.name_or_path, EMOJIS).pooling == "mean"
    cls = base_model.load_classifier(mean_model.config.name_or_path, EMOJIS, "cls")
    cls.set_weights(mean_model.get_weights())  # the same weights under the [CLS] pooler score otherwise
    assert not np.allclose(cls(input_ids=ids, attention_mask=mask, training=False).logits.numpy(), padded,
                           atol=1e-3)


def test_the_exported_bundle_scores_packed_texts_as_if_each_were_alone(
        mean_model, tiny_model, tiny_ngram, tmp_path):
    tok = tokenization.save_fast_tokenizer(tiny_model, tmp_path / "tok")
    bundle.export(mean_model, tok, EMOJIS, {"max_length": 32, "pooling": "mean", "ensemble": {"weight": 0.3}},
                  tmp_path / "bundle", ngrams.head(tiny_ngram[0]), 0.3)
    predictor = bundle.Predictor(tmp_path / "bundle", batch_size=512)
    texts = demo.demo_tweets(120, seed=4).TWEET.tolist() + ["", "word " * 100]
    packed = predictor.logits(texts)  # one call of mixed lengths: packed
    alone = np.concatenate([predictor.logits([t]) for t in texts])
    np.testing.assert_allclose(packed, alone, atol=1e-5)
    ids = tokenization.encode(predictor.tokenizer, [clean_text(t) for t in texts[:3]])
    direct = [mean_model(input_ids=np.array([r]), training=False).logits.numpy()[0] for r in ids]
    np.testing.assert_allclose(predictor.parts(texts[:3])["encoder"],
                               [np.exp(d) / np.exp(d).sum() for d in direct],
                               atol=1e-5)


def test_it_trains_with_the_pooler_untouched(tiny_model, tiny_ngram):
    import tensorflow as tf

    from emoji_reco.model.training import _loss

    model = base_model.load_classifier(tiny_model, EMOJIS, "mean")
    _, ids, labels = tiny_ngram
    width = max(map(len, ids[:256]))
    x = np.array([r + [0] * (width - len(r)) for r in ids[:256]], np.int32)
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3), loss=_loss(len(EMOJIS), 0.1))
    pooler = [w.numpy().copy() for w in model.bert.pooler.weights]
    history = model.fit({"input_ids": x, "attention_mask": (x > 0).astype(np.int32)}, labels[:256], epochs=4,
                        batch_size=32, verbose=0).history["loss"]
    assert history[-1] < history[0] * 0.9
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(pooler, model.bert.pooler.weights))


def test_label_smoothing_is_cross_entropy_against_smoothed_targets():
    from emoji_reco.model.training import _loss

    logits = np.array([[2.0, 0.5, -1.0]], np.float32)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    targets = np.array([0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3])
    assert float(np.mean(_loss(3, 0.1)(np.array([1]),
                                       logits))) == pytest.approx(-(targets * np.log(p)).sum(), rel=1e-5)
    assert float(np.mean(_loss(3, 0.0)(np.array([1]), logits))) == pytest.approx(-np.log(p[1]), rel=1e-5)


def test_a_wrong_pooling_or_a_non_bert_model_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r'model.pooling: expected one of "auto", "cls", "mean", got "max"'):
        parse('{"model": {"pooling": "max"}}')
    with pytest.raises(ConfigError, match="train.label_smoothing: expected a number from 0.0 to 0.5"):
        parse('{"train": {"label_smoothing": 0.9}}')
    from transformers import DistilBertConfig, TFDistilBertModel

    tiny = TFDistilBertModel(DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32))
    tiny(tiny.dummy_inputs)
    tiny.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="needs a BERT model.*'distilbert'"):
        base_model.load_classifier(tmp_path, EMOJIS, "mean")
    model = base_model.load_classifier(tmp_path, EMOJIS)  # auto: its own head
    assert model.config.model_type == "distilbert" and not hasattr(model, "pooling")
