"""The served model's int8 form, written into a bundle beside its SavedModel: the bundle's `serving_default`
(both halves, mixed) converted by TensorFlow's `TFLiteConverter` with dynamic-range int8 weights, for LiteRT
to serve without TensorFlow (chosen by measurement: bench/RESULTS.md, "An int8 runtime"), and the n-gram
half's weights as numpy, for explanations without TensorFlow. The bundle's metadata lists the forms it holds
under `forms`; a bundle without the key holds the SavedModel alone."""
import json
from pathlib import Path

import numpy as np

from emoji_reco.model.bundle import METADATA, SAVED_MODEL

INT8_FILE, NGRAM_FILE = "model.int8.tflite", "ngram.npz"
SAVEDMODEL_FORM, INT8_FORM = "savedmodel", "litert_int8"


def export(folder) -> dict:
    """Write the int8 form (and the n-gram weights, if the bundle has that half) into the bundle `folder`; the
    forms its metadata now lists."""
    import tensorflow as tf

    folder = Path(folder)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / SAVED_MODEL),
                                                         signature_keys=["serving_default"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    (folder / INT8_FILE).write_bytes(converter.convert())
    forms = {SAVEDMODEL_FORM: SAVED_MODEL, INT8_FORM: INT8_FILE}
    head = getattr(tf.saved_model.load(str(folder / SAVED_MODEL)), "ngram", None)
    if head is not None:
        np.savez(folder / NGRAM_FILE, idf=head.idf.numpy(), kernel=head.kernel.numpy(),
                 bias=head.bias.numpy())
    metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
    metadata["forms"] = forms
    (folder / METADATA).write_text(json.dumps(metadata, indent=1, ensure_ascii=False), encoding="utf-8")
    return forms


def forms(metadata: dict) -> dict:
    """The forms a bundle holds, by name → file or folder (older bundles: the SavedModel alone)."""
    return metadata.get("forms") or {SAVEDMODEL_FORM: SAVED_MODEL}
