"""`serve.runtime`: the int8 form answers as the SavedModel does (explanations exactly), and every fault of
the int8 form is said in one line: served as float32 where the setting allows it, refused where it demands
int8."""
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from emoji_reco.errors import ConfigError, ModelError
from emoji_reco.model import bundle, evaluation, int8
from emoji_reco.serving.serve_settings import ServeSettings, model_threads
from emoji_reco.settings import defaults, typed, with_overrides
from helpers.datasets import SAMPLE_TEXTS

# lengths mixed enough to fall into several of the int8 form's length buckets (`runtimes.LENGTH_BUCKETS`)
MIXED = [*SAMPLE_TEXTS, "ok", "a much longer text about the game tonight with friends, fire and food"]


@pytest.fixture
def copy(tiny_bundle, tmp_path):
    """A copy of the tiny bundle (with its int8 form) to break."""
    folder = tmp_path / "v7"
    shutil.copytree(tiny_bundle[1], folder)
    return folder


def runtime_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "emoji_reco.model.runtimes"
            and r.levelno >= logging.WARNING]


def test_the_int8_form_answers_as_the_savedmodel_and_explains_the_same_words(tiny_bundle):
    exact = bundle.Predictor(tiny_bundle[1])
    quantized = bundle.Predictor(tiny_bundle[1], runtime="int8", calls=2, op_threads=1)
    assert (exact.runtime, quantized.runtime) == ("savedmodel", "litert_int8")
    a, b = exact.logits(MIXED), quantized.logits(MIXED)
    assert a.shape == b.shape and np.abs(a - b).max() < 0.1 * np.abs(a).max()
    for text in SAMPLE_TEXTS:  # the n-gram half's weights, from numpy, exactly as from the SavedModel
        emojis = exact.emojis[:3]
        assert quantized.explainer.explain(text, emojis) == exact.explainer.explain(text, emojis)
    assert quantized.parts(SAMPLE_TEXTS) is None  # the int8 form is the mixture only


def test_auto_serves_the_int8_form_when_it_is_there(tiny_bundle, caplog):
    assert bundle.Predictor(tiny_bundle[1], runtime="auto").runtime == "litert_int8"
    assert runtime_lines(caplog) == []


@pytest.mark.parametrize("fault, named", [
    ("corrupt", "model.int8.tflite can't be loaded by LiteRT"),
    ("missing", "model.int8.tflite is missing"),
    ("not written", "holds no int8 form (trained before emoji-reco wrote one)"),
])
def test_a_broken_int8_form_serves_float32_in_one_line_under_auto_and_is_refused_under_int8(
        copy, caplog, fault, named):
    if fault == "corrupt":
        (copy / int8.INT8_FILE).write_bytes(b"not a flatbuffer")
    elif fault == "missing":
        (copy / int8.INT8_FILE).unlink()
    else:
        metadata = bundle.read_metadata(copy)
        del metadata["forms"]
        (copy / bundle.METADATA).write_text(json.dumps(metadata))
    assert bundle.Predictor(copy, runtime="auto").runtime == "savedmodel"
    [line] = runtime_lines(caplog)
    assert line.startswith("v7: serving the float32 SavedModel, not the int8 form: ") and named in line
    with pytest.raises(ModelError, match=re.escape(named)):
        bundle.Predictor(copy, runtime="int8")


def test_without_litert_installed_the_extra_to_install_is_named(copy, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails as if not installed
    with pytest.raises(ModelError, match=r"needs LiteRT, which is not installed: pip install "
                                         r"'emoji-reco\[int8\]'"):
        bundle.Predictor(copy, runtime="int8")
    assert bundle.Predictor(copy, runtime="auto").runtime == "savedmodel"
    assert "emoji-reco[int8]" in runtime_lines(caplog)[0]


def test_without_tensorflow_only_the_int8_form_serves(copy, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    assert bundle.Predictor(copy, runtime="int8").runtime == "litert_int8"
    with pytest.raises(ModelError, match="no TensorFlow to serve the float32 SavedModel"):
        bundle.Predictor(copy)


def test_the_gate_keeps_its_verdict_in_the_bundle_and_a_refused_int8_form_serves_float32(copy, caplog):
    from emoji_reco.data import demo

    texts, labels = SAMPLE_TEXTS, np.arange(len(SAMPLE_TEXTS)) % len(demo.EMOJIS)
    metrics = evaluation.score(bundle.Predictor(copy).probabilities(texts), labels, demo.EMOJIS)
    lenient = evaluation.check_int8(copy, texts, labels, demo.EMOJIS, metrics, 100.0)
    assert lenient["passed"] and "within serve.max_int8_top3_drop 100.00" in lenient["reason"]
    assert bundle.read_metadata(copy)[int8.CHECK] == lenient
    # as if the SavedModel had scored far above its int8 form
    strict = evaluation.check_int8(copy, texts, labels, demo.EMOJIS, {**metrics, "top3": 1.5}, 0.5)
    assert not strict["passed"] and strict["top3_drop_points"] > 0.5 and "top3" in strict  # int8's own
    assert "more than serve.max_int8_top3_drop 0.50" in strict["reason"]
    for runtime in ("int8", "auto"):  # the gate's decision, not a fault: float32 serves either way
        caplog.clear()
        assert bundle.Predictor(copy, runtime=runtime).runtime == "savedmodel"
        [line] = runtime_lines(caplog)
        assert "the quality gate refused its int8 form: top-3" in line


def test_a_bundle_without_an_int8_form_gets_no_int8_verdict(copy):
    metadata = bundle.read_metadata(copy)
    del metadata["forms"]
    (copy / bundle.METADATA).write_text(json.dumps(metadata))
    assert evaluation.check_int8(copy, ["x"], np.array([0]), ["a"], {"top3": 1.0}, 0.5) is None


def test_an_unknown_runtime_is_a_config_error_naming_the_allowed_values():
    with pytest.raises(ConfigError, match="is one of savedmodel, int8, auto, not 'onnx'"):
        ServeSettings(runtime="onnx")
    with pytest.raises(ConfigError, match='serve.runtime: expected one of "savedmodel", "int8", "auto", '
                                          'got "onnx"'):
        typed(with_overrides(defaults(), {"serve.runtime": "onnx"}))
    with pytest.raises(ConfigError, match="serve.max_int8_top3_drop"):
        typed(with_overrides(defaults(), {"serve.max_int8_top3_drop": -1.0}))


def test_int8_serves_with_one_process_of_one_model_call_per_core_unless_told():
    cores = len(os.sched_getaffinity(0))
    int8_settings = ServeSettings(runtime="int8")
    assert int8_settings.workers == cores and model_threads(int8_settings) == (1, 1)
    assert ServeSettings(runtime="savedmodel").workers == ServeSettings(runtime="auto").workers == 1
    assert ServeSettings(runtime="int8", workers=1).workers == 1


def test_serve_demanding_int8_of_a_bundle_without_it_refuses_to_start_in_one_line(copy, tmp_path):
    (copy / int8.INT8_FILE).unlink()
    done = subprocess.run([sys.executable, "-m", "emoji_reco.cli", "serve", "--model", str(copy),
                           "--runtime", "int8", "--port", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"emoji-reco: {copy / int8.INT8_FILE} is missing: the bundle lists an int8 form it does not hold.")
    assert "Traceback" not in done.stderr
    workers = subprocess.run([sys.executable, "-m", "emoji_reco.cli", "serve", "--model", str(copy),
                              "--runtime", "int8", "--workers", "2"], capture_output=True, text=True,
                             timeout=120)  # refused before any worker starts
    assert workers.returncode == 2
    assert workers.stderr.strip().splitlines()[-1] == done.stderr.strip().splitlines()[-1]
    bad = subprocess.run([sys.executable, "-m", "emoji_reco.cli", "serve", "--model", str(copy),
                          "--runtime", "fast"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "is one of savedmodel, int8, auto, not 'fast'" in bad.stderr
