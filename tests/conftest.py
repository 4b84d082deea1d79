"""Shared fixtures: an isolated Metaflow root and endpoint home, a tiny BERT, flow configs, a moto server."""
import os
import shutil

import pytest
from hypothesis import Phase, settings

from helpers import isolation  # first: the environment Metaflow reads when it is imported
from helpers.datasets import SAMPLE_TEXTS
from helpers.flows import run_flow, tiny_flow_config
from helpers.network import moto

SESSION = isolation.SESSION
AWS_FIXTURES = {"moto_server", "aws", "own_aws"}

settings.register_profile("mutation", derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(items):
    """Mark every test that talks to moto `aws`, so `-m aws` (or `-m "not aws"`) selects them."""
    for item in items:
        if AWS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.aws)


@pytest.fixture(scope="session", autouse=True)
def session_dir():
    """Every test runs in the session folder, so Metaflow finds (and creates) its .metaflow there."""
    before = os.getcwd()
    os.chdir(SESSION)
    yield SESSION
    os.chdir(before)
    shutil.rmtree(SESSION, ignore_errors=True)  # its runs, bundles and endpoints: up to 1 GB a session


@pytest.fixture(scope="session")
def bundled_model_dir():
    from emoji_reco.model import base_model

    return base_model.resolve("bundled")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, bundled_model_dir):
    """A 2-layer, 32-wide BERT with random weights and the real MiniLM tokenizer: seconds to train."""
    from transformers import BertConfig, TFBertModel

    import emoji_reco  # noqa: F401  (selects Keras 2 before TensorFlow loads)

    folder = tmp_path_factory.mktemp("tiny-bert")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(bundled_model_dir / name, folder / name)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    model = TFBertModel(config)
    model(model.dummy_inputs)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_ngram(tiny_model):
    """An n-gram half fitted on 500 demo tweets tokenized by the tiny model's tokenizer: (params, ids,
    labels)."""
    import numpy as np

    from emoji_reco.data import demo
    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.model import ngrams, tokenization

    tweets = demo.demo_tweets(600, seed=5)
    ids = tokenization.encode(tokenization.load(tiny_model, 32), [clean_text(t) for t in tweets.TWEET])
    labels = np.array([demo.EMOJIS.index(e) for e in tweets.LABEL])
    params = ngrams.fit(ids[:500], labels[:500], len(demo.EMOJIS), 30522, 4096, 2.0)
    return params, ids, labels


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_model, tiny_ngram):
    """The tiny model (untrained head) and the n-gram half, exported as one combined bundle over the demo
    emojis with n-gram weight 0.3, with its int8 form, as training exports it: (encoder, folder)."""
    from emoji_reco.data import demo
    from emoji_reco.model import base_model, bundle, int8, ngrams, tokenization

    model = base_model.load_classifier(tiny_model, demo.EMOJIS)
    out = tmp_path_factory.mktemp("bundle")
    tok = tokenization.save_fast_tokenizer(tiny_model, out.parent / "tok")
    head = ngrams.head(tiny_ngram[0])
    bundle.export(model, tok, demo.EMOJIS, {"max_length": 32, "base_model": str(tiny_model),
                                            "ensemble": {"weight": 0.3}}, out, head, 0.3)
    int8.export(out, head)
    return model, out


@pytest.fixture(scope="session")
def champion(tmp_path_factory, tiny_model):
    """A successful EmojiFlow run on the demo data with the tiny model, deployed to the `emoji-reco`
    endpoint."""
    status, run, output = run_flow(tiny_flow_config(tiny_model))
    assert status == "successful", output[-4000:]
    return run


@pytest.fixture(scope="session")
def moto_server():
    """moto in server mode on 127.0.0.1; yields its URL and stops it after the session."""
    with moto() as url:
        yield url


def _point_aws_at(url: str, monkeypatch):
    import uuid

    import boto3

    for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    bucket = f"emoji-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def aws(moto_server, monkeypatch):
    """boto3 and metaflow.S3 pointed at the session's moto server, with a fresh bucket; yields (s3 client,
    bucket)."""
    return _point_aws_at(moto_server, monkeypatch)


@pytest.fixture
def own_aws(monkeypatch):
    """Like `aws`, on a moto server of the test's own: for tests whose EventBridge rules on the default bus
    would change what other tests see (moto stops delivering there once any rule targets a state machine)."""
    with moto() as url:
        yield _point_aws_at(url, monkeypatch)


@pytest.fixture(scope="session")
def precision_bundles(tmp_path_factory, tiny_model):
    """The tiny model trained in each precision `train.precision` accepts and exported as training exports it:
    {precision: (bundle folder, the trained model's encoder probabilities for SAMPLE_TEXTS)}. The Keras
    precision policy is restored afterwards."""
    import numpy as np
    import tensorflow as tf

    from emoji_reco import settings
    from emoji_reco.data import dataset
    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.model import ensemble, tfrecords, tokenization, training

    tmp = tmp_path_factory.mktemp("precisions")
    config = settings.with_overrides(settings.defaults(), {
        "model.base": str(tiny_model), "model.max_length": 32, "model.ngram.buckets": 4096, "demo.rows": 300,
        "train.epochs": 1, "train.batch_size": 16, "train.learning_rate": 1e-3,
        "train.bucket_boundaries": [8, 16]})
    typed = settings.typed(config)
    prepared = dataset.prepare(typed.data, typed.demo)
    records = tfrecords.convert_shard(prepared.splits, 0, 1, tiny_model, 32, 256, str(tmp / "records"))
    ids, mask = tokenization.pad(tokenization.encode(tokenization.load(tiny_model, 32),
                                                     [clean_text(t) for t in SAMPLE_TEXTS]))
    real_copy, trained, out = training._local_copy, {}, {}

    # the trained model's own answers, in its own precision, before the export copies it
    def spy(model, *args):
        trained["probabilities"] = ensemble.softmax(np.asarray(
            model(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), training=False).logits,
            np.float64))
        return real_copy(model, *args)

    policy = tf.keras.mixed_precision.global_policy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "_local_copy", spy)
        try:
            for precision in ("float32", "mixed_bfloat16", "mixed_float16"):
                folder = tmp / precision
                training.train_bundle(records, prepared.emojis,
                                      settings.typed(settings.with_overrides(config, {
                    "train.precision": precision})), str(folder), {"run": precision})
                out[precision] = (folder, trained.pop("probabilities"))
        finally:
            tf.keras.mixed_precision.set_global_policy(policy)
    return out
