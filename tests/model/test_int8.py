"""The int8 form a bundle holds beside its SavedModel: written by `int8.export`, listed in the metadata,
answering as the SavedModel does within int8's rounding, and the n-gram weights kept as numpy."""
import json
import shutil

import numpy as np
import pytest

from emoji_reco.model import bundle, int8
from helpers.datasets import SAMPLE_TEXTS


@pytest.fixture(scope="module")
def int8_bundle(tiny_bundle):
    """The tiny bundle, which `int8.export` has written its int8 form into: (folder, forms)."""
    return tiny_bundle[1], bundle.read_metadata(tiny_bundle[1])["forms"]


def test_the_int8_form_is_written_beside_the_savedmodel_and_listed(int8_bundle, tmp_path):
    folder, forms = int8_bundle
    assert forms == {"savedmodel": "saved_model", "litert_int8": "model.int8.tflite"}
    assert int8.forms(bundle.read_metadata(folder)) == forms
    older = tmp_path / "older"  # a bundle written before the int8 form
    shutil.copytree(folder, older, ignore=shutil.ignore_patterns(int8.INT8_FILE, int8.NGRAM_FILE))
    metadata = bundle.read_metadata(older)
    del metadata["forms"]
    (older / bundle.METADATA).write_text(json.dumps(metadata))
    assert int8.forms(bundle.read_metadata(older)) == {"savedmodel": "saved_model"}
    assert (folder / int8.INT8_FILE).stat().st_size < 0.5 * sum(
        p.stat().st_size for p in (folder / bundle.SAVED_MODEL).rglob("*") if p.is_file())
    assert json.loads((folder / bundle.METADATA).read_text())["ensemble"] == {"weight": 0.3}  # the rest kept


def test_litert_answers_as_the_savedmodel_within_int8_rounding(int8_bundle):
    from ai_edge_litert.interpreter import Interpreter

    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.model import tokenization

    folder, _ = int8_bundle
    predictor = bundle.Predictor(folder, pack=False)
    ids, mask = tokenization.pad(tokenization.encode(predictor.tokenizer,
                                                     [clean_text(t) for t in SAMPLE_TEXTS]))
    runner = Interpreter(model_path=str(folder / int8.INT8_FILE)).get_signature_runner("serving_default")
    quantized = runner(input_ids=ids, attention_mask=mask)["logits"]
    exact = predictor.logits(SAMPLE_TEXTS)
    assert quantized.shape == exact.shape and np.abs(quantized - exact).max() < 0.1 * np.abs(exact).max()


def test_the_ngram_weights_are_kept_as_numpy(int8_bundle):
    import tensorflow as tf

    folder, _ = int8_bundle
    head = tf.saved_model.load(str(folder / bundle.SAVED_MODEL)).ngram
    with np.load(folder / int8.NGRAM_FILE, allow_pickle=False) as kept:
        for name in ("idf", "kernel", "bias"):
            np.testing.assert_array_equal(kept[name], getattr(head, name).numpy())
