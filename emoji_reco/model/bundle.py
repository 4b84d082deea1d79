"""The model bundle: SavedModel + fast tokenizer + labels.json + metadata.json, and a predictor over it."""
import json
from pathlib import Path

import numpy as np

from emoji_reco.data.text import clean_text
from emoji_reco.errors import ModelError
from emoji_reco.model import packing, tokenization
from emoji_reco.serving import payloads

SAVED_MODEL, TOKENIZER, LABELS, METADATA = "saved_model", "tokenizer", "labels.json", "metadata.json"


def write_labels(folder: Path, emojis: list) -> None:
    (Path(folder) / LABELS).write_text(json.dumps({str(i): e for i, e in enumerate(emojis)}, ensure_ascii=False, indent=1),
                                       encoding="utf-8")


def read_labels(folder: Path) -> list:
    mapping = json.loads((Path(folder) / LABELS).read_text(encoding="utf-8"))
    return [mapping[k] for k in sorted(mapping, key=int)]


def read_metadata(folder: Path) -> dict:
    return json.loads((Path(folder) / METADATA).read_text(encoding="utf-8"))


def export(model, tokenizer_dir: Path, emojis: list, metadata: dict, out_dir: Path) -> Path:
    """Write a bundle: a SavedModel whose `serving_default` maps int32 `input_ids`/`attention_mask` to
    `logits` and `probabilities` (for BERT models also a `packed` signature, see `packing`), next to the
    tokenizer, the label map and metadata."""
    import shutil

    import tensorflow as tf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                                  tf.TensorSpec([None, None], tf.int32, name="attention_mask")])
    def serve(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    signatures = {"serving_default": serve}
    if packed := packing.signature(model):
        signatures[packing.SIGNATURE] = packed
    tf.saved_model.save(model, str(out_dir / SAVED_MODEL), signatures=signatures)
    shutil.copytree(tokenizer_dir, out_dir / TOKENIZER, dirs_exist_ok=True)
    write_labels(out_dir, emojis)
    (out_dir / METADATA).write_text(json.dumps(metadata, indent=1, ensure_ascii=False), encoding="utf-8")
    return out_dir


class Predictor:
    """Scores texts with a bundle: clean, tokenize (the training tokenizer), batch by length, run the SavedModel;
    a batch of mixed lengths runs packed when the bundle has that signature."""

    def __init__(self, folder, batch_size: int = 64, pack: bool = True):
        import tensorflow as tf

        folder = Path(folder)
        if not (folder / SAVED_MODEL).is_dir():
            raise ModelError(f"{folder} is not a model bundle (no {SAVED_MODEL}/ inside).")
        self.folder = folder
        self.metadata = read_metadata(folder)
        self.emojis = read_labels(folder)
        self.batch_size = batch_size
        self.tokenizer = tokenization.load(folder / TOKENIZER, self.metadata["max_length"])
        signatures = tf.saved_model.load(str(folder / SAVED_MODEL)).signatures
        self._serve = signatures["serving_default"]
        self._packed = signatures.get(packing.SIGNATURE) if pack else None

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw scores, one row per text, in input order."""
        import tensorflow as tf

        ids = tokenization.encode(self.tokenizer, [clean_text(t) for t in texts])
        order = np.argsort([len(r) for r in ids], kind="stable")
        out = np.zeros((len(ids), len(self.emojis)), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = [ids[i] for i in rows]
            if self._packed is not None and packing.worth_packing([len(r) for r in batch]):
                inputs = packing.pack(batch, self.metadata["max_length"])
                result = self._packed(**{k: tf.constant(v) for k, v in inputs.items()})
            else:
                input_ids, mask = tokenization.pad(batch)
                result = self._serve(input_ids=tf.constant(input_ids), attention_mask=tf.constant(mask))
            out[rows] = result["logits"].numpy()
        return out

    def warm_up(self) -> None:
        """Call every form of the model once (a first call costs ~0.3 s), so traffic doesn't pay for it."""
        self.logits(["warm up"])  # padded
        self.logits(["warm up", "a second, longer text to warm up the packed form"])

    def probabilities(self, texts: list[str]) -> np.ndarray:
        logits = self.logits(texts)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def top_k(self, texts: list[str], k: int = 3) -> list[list[dict]]:
        """For each text the `k` likeliest emojis with their probabilities, best first."""
        return payloads.top_k(self.logits(texts).tolist(), self.emojis, k)
