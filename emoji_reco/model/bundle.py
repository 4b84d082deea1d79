"""The model bundle: SavedModel + fast tokenizer + labels.json + metadata.json, and a predictor over it."""
import functools
import json
from pathlib import Path

import numpy as np

from emoji_reco.data.cleaning import clean_text, sure_words
from emoji_reco.errors import ModelError
from emoji_reco.model import packing, runtimes, tokenization
from emoji_reco.model.layout import LABELS, METADATA, SAVED_MODEL, TOKENIZER

FORMAT = 2  # 2 added the n-gram half and the `parts` signature; format-1 signatures are unchanged
PARTS = runtimes.PARTS


def write_labels(folder: Path, emojis: list) -> None:
    (Path(folder) / LABELS).write_text(json.dumps({str(i): e for i, e in enumerate(emojis)},
                                                  ensure_ascii=False, indent=1),
                                       encoding="utf-8")


def read_labels(folder: Path) -> list:
    mapping = json.loads((Path(folder) / LABELS).read_text(encoding="utf-8"))
    return [mapping[k] for k in sorted(mapping, key=int)]


def read_metadata(folder: Path) -> dict:
    return json.loads((Path(folder) / METADATA).read_text(encoding="utf-8"))


def check_format(metadata: dict, where) -> None:
    """Refuse a bundle written by a newer emoji-reco, naming both formats."""
    found = metadata.get("format", 1)
    if not isinstance(found, int) or found > FORMAT:
        raise ModelError(f"{where} is a format-{found} model bundle; this emoji-reco reads "
                         f"formats up to {FORMAT}. "
                         "Upgrade emoji-reco where it serves, or serve a bundle trained by this version.")


def export(model, tokenizer_dir: Path, emojis: list, metadata: dict, out_dir: Path, ngram=None,
           weight: float = 0.0) -> Path:
    """Write a bundle: a SavedModel whose `serving_default` maps int32 `input_ids`/`attention_mask` to
    `logits` and `probabilities`, next to the tokenizer, the label map and metadata. For BERT models it also
    has a `packed` signature (see `packing`). With an n-gram `Head`, `logits` are the mixture's (see
    `ensemble`) and a `parts` signature gives `encoder_logits` and `ngram_logits` too."""
    import shutil

    import tensorflow as tf

    from emoji_reco.model import ensemble

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = tf.Module()
    root.encoder, root.ngram = model, ngram
    ids_and_mask = [tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                    tf.TensorSpec([None, None], tf.int32, name="attention_mask")]

    def outputs(encoder, ngram_logits=None):
        logits = encoder if ngram_logits is None else ensemble.mix(encoder, ngram_logits, weight)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    def padded_parts(input_ids, attention_mask):
        encoder = model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits
        return encoder, None if ngram is None else ngram(input_ids, attention_mask)[:, 1]

    @tf.function(input_signature=ids_and_mask)
    def serve(input_ids, attention_mask):
        return outputs(*padded_parts(input_ids, attention_mask))

    signatures = {"serving_default": serve}
    if ngram is not None:
        @tf.function(input_signature=ids_and_mask)
        def parts(input_ids, attention_mask):
            encoder, ngram_logits = padded_parts(input_ids, attention_mask)
            return {"encoder_logits": encoder, "ngram_logits": ngram_logits, **outputs(encoder, ngram_logits)}

        signatures[PARTS] = parts
    if packed_encoder := packing.encoder_logits(model):
        @tf.function(input_signature=packing.input_signature())
        def packed(input_ids, position_ids, segments, starts):
            encoder = packed_encoder(input_ids, position_ids, segments, starts)
            if ngram is None:
                return outputs(encoder)
            # each text's (row, segment)
            text = tf.stack([starts[:, 0], tf.gather_nd(segments, starts)], axis=1)
            return outputs(encoder, tf.gather_nd(ngram(input_ids, segments), text))

        signatures[packing.SIGNATURE] = packed
    tf.saved_model.save(root, str(out_dir / SAVED_MODEL), signatures=signatures)
    shutil.copytree(tokenizer_dir, out_dir / TOKENIZER, dirs_exist_ok=True)
    write_labels(out_dir, emojis)
    (out_dir / METADATA).write_text(json.dumps({**metadata, "format": FORMAT}, indent=1, ensure_ascii=False),
                                    encoding="utf-8")
    return out_dir


class Predictor:
    """Scores texts with a bundle: clean, tokenize (the training tokenizer), batch by length, run the form of
    the model `runtime` picks (`runtimes`: the SavedModel, whose mixed-length batches run packed when it has
    that signature, or the int8 form). `calls` model calls may run at once, each on `op_threads` threads."""

    def __init__(self, folder, batch_size: int = 64, pack: bool = True, runtime: str = "savedmodel",
                 calls: int = 1, op_threads: int | None = None):
        folder = Path(folder)
        if not (folder / SAVED_MODEL).is_dir():
            raise ModelError(f"{folder} is not a model bundle (no {SAVED_MODEL}/ inside).")
        self.folder = folder
        self.metadata = read_metadata(folder)
        check_format(self.metadata, folder)
        self.emojis = read_labels(folder)
        self.batch_size = batch_size
        self.tokenizer = tokenization.load(folder / TOKENIZER, self.metadata["max_length"])
        self._specials = len(tokenization.encode(self.tokenizer, [""])[0])  # [CLS] [SEP]: every text has them
        self.forward = runtimes.choose(folder, self.metadata, runtime, pack, calls, op_threads)
        self.runtime = self.forward.form  # the form serving, which `runtime` picked

    def _scores(self, texts: list[str], outputs: tuple, signature: str = runtimes.SERVING_DEFAULT) -> dict:
        """The named outputs, one row per text in input order."""
        ids = tokenization.encode(self.tokenizer, [clean_text(t) for t in texts])
        order = np.argsort([len(r) for r in ids], kind="stable")
        out = {name: np.zeros((len(ids), len(self.emojis)), dtype=np.float32) for name in outputs}
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            result = self.forward.run([ids[i] for i in rows], outputs, signature)
            for name in outputs:
                out[name][rows] = result[name]
        return out

    def token_count(self, texts: list[str], limit: int | None = None) -> int:
        """The tokens the model would take for `texts`: each text's ids after truncation to `max_length`. Past
        `limit` it may stop early with a lower bound (the special tokens and `sure_words`), so that pricing a
        request of long texts costs a regex over their first words, not cleaning and tokenizing all of
        them."""
        if limit is not None:
            least, cap = 0, self.metadata["max_length"]
            for text in texts:
                least += min(cap, self._specials + (sure_words(text, cap) if isinstance(text, str) else 0))
                if least > limit:
                    return least
        return sum(map(len, tokenization.encode(self.tokenizer, [clean_text(t) for t in texts])))

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw scores, one row per text, in input order."""
        return self._scores(texts, ("logits",))["logits"]

    def parts(self, texts: list[str]) -> dict | None:
        """Probabilities of the combined model and of each part, {"encoder", "ngram", "combined"}; None for a
        bundle of one part."""
        from emoji_reco.model.ensemble import softmax

        if PARTS not in self.forward.signatures:
            return None
        scores = self._scores(texts, ("encoder_logits", "ngram_logits", "logits"), PARTS)
        return {name: softmax(scores[key]) for name, key in
                (("encoder", "encoder_logits"), ("ngram", "ngram_logits"), ("combined", "logits"))}

    @functools.cached_property
    def explainer(self):
        """`explain.Explainer` of the bundle's n-gram half; None for a bundle without one."""
        from emoji_reco.model.explain import Explainer

        weights, ensemble = self.forward.ngram_weights(), self.metadata.get("ensemble")
        if weights is None or not ensemble:
            return None
        idf, kernel = weights
        # the encoder's, which the pairs' hash uses; the rest are buckets
        vocab = self.tokenizer.get_vocab_size()
        return Explainer(self.tokenizer, idf, kernel, vocab, len(idf) - vocab, self.emojis,
                         ensemble["weight"],
                         self.metadata["max_length"])

    def warm_up(self) -> None:
        """Call every form of the model once (a first call costs ~0.3 s), so traffic doesn't pay for it."""
        self.logits(["warm up"])  # padded
        self.logits(["warm up", "a second, longer text to warm up the packed form"])

    def probabilities(self, texts: list[str]) -> np.ndarray:
        from emoji_reco.model.ensemble import softmax

        return softmax(self.logits(texts))
