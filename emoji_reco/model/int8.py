"""The served model's int8 form, written into a bundle beside its SavedModel: the bundle's `serving_default`
(both halves, mixed) converted by TensorFlow's `TFLiteConverter` with dynamic-range int8 weights, for LiteRT
to serve without TensorFlow (chosen by measurement: bench/RESULTS.md, "An int8 runtime"), and the n-gram
half's weights as numpy, for explanations without TensorFlow. The bundle's metadata lists the forms it holds
under `forms`; a bundle without the key holds the SavedModel alone."""
import json
from pathlib import Path

import numpy as np

from emoji_reco.model.layout import INT8_FILE, METADATA, NGRAM_FILE, SAVED_MODEL

SAVEDMODEL_FORM, INT8_FORM = "savedmodel", "litert_int8"
CHECK = "int8_check"  # the metadata key of the quality gate's verdict on the int8 form (`record_check`)


def export(folder, head=None) -> dict:
    """Write the int8 form (and the n-gram weights of `head`, the bundle's `ngrams.Head` if it has one) into
    the bundle `folder`; the forms its metadata now lists."""
    import tensorflow as tf

    folder = Path(folder)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / SAVED_MODEL),
                                                         signature_keys=["serving_default"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    (folder / INT8_FILE).write_bytes(converter.convert())
    forms = {SAVEDMODEL_FORM: SAVED_MODEL, INT8_FORM: INT8_FILE}
    if head is not None:
        np.savez(folder / NGRAM_FILE, idf=head.idf.numpy(), kernel=head.kernel.numpy(),
                 bias=head.bias.numpy())
    _update_metadata(folder, forms=forms)
    return forms


def _update_metadata(folder: Path, **keys) -> None:
    metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
    (folder / METADATA).write_text(json.dumps({**metadata, **keys}, indent=1, ensure_ascii=False),
                                   encoding="utf-8")


def record_check(folder, check: dict) -> None:
    """Keep the quality gate's verdict on the int8 form (`evaluation.check_int8`) in the bundle's metadata,
    where every server of the bundle reads it."""
    _update_metadata(Path(folder), **{CHECK: check})


def refusal(metadata: dict) -> str | None:
    """Why the quality gate refused this bundle's int8 form, or None (passed, or never checked)."""
    check = metadata.get(CHECK)
    if not check or check["passed"]:
        return None
    return f"the quality gate refused its int8 form: {check['reason']}"


def forms(metadata: dict) -> dict:
    """The forms a bundle holds, by name → file or folder (older bundles: the SavedModel alone)."""
    return metadata.get("forms") or {SAVEDMODEL_FORM: SAVED_MODEL}
