"""What runs a bundle's model, behind one seam (`Forward`): the float32 SavedModel in TensorFlow, or the int8
form (`int8.py`) in LiteRT, which needs no TensorFlow. `serve.runtime` picks one:

- `savedmodel`: the SavedModel (the default);
- `int8`: the int8 form; a bundle without a usable one (none written, the file missing or corrupt, LiteRT not
  installed) fails to load, naming the file or the extra to install;
- `auto`: the int8 form if the bundle has a usable one, else the SavedModel, with one log line saying why.

Either way a version whose int8 form the quality gate refused (`int8.refusal`) serves its SavedModel, with the
reason in one log line."""
import logging
import os
import queue
from abc import ABC, abstractmethod
from pathlib import Path
from typing import get_args

import numpy as np

from emoji_reco.errors import ModelError
from emoji_reco.model import int8, packing, tokenization
from emoji_reco.model.layout import INT8_FILE, NGRAM_FILE, SAVED_MODEL
from emoji_reco.settings.sections import Runtime

RUNTIMES = get_args(Runtime)
SERVING_DEFAULT, PARTS = "serving_default", "parts"
INSTALL_INT8 = "pip install 'emoji-reco[int8]'"
LENGTH_BUCKETS = (8, 16, 24, 32, 48)  # tokens: the int8 form pads a text to the longest of its bucket
log = logging.getLogger("emoji_reco.model.runtimes")


class Forward(ABC):
    """One form of a bundle's model: token-id rows in, named outputs out (one row per input row)."""

    form: str  # the name a bundle's metadata lists it under (`int8.forms`)
    signatures: frozenset  # SERVING_DEFAULT always; PARTS for a SavedModel of two halves

    @abstractmethod
    def run(self, rows: list[list[int]], outputs: tuple, signature: str) -> dict:
        """`outputs` (`logits`; with PARTS also `encoder_logits`, `ngram_logits`) for token-id rows."""

    @abstractmethod
    def ngram_weights(self) -> tuple | None:
        """(idf, kernel) of the n-gram half, or None for a bundle without one."""


def limit_tf_threads(threads: int) -> None:
    """TensorFlow's threads per op; kept as they are once TensorFlow has run in this process."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised (an earlier version, an embedding app, a test)
        log.debug("TensorFlow is already initialised; keeping its thread settings")


class SavedModelForward(Forward):
    """The float32 SavedModel; a batch of mixed lengths runs packed when the bundle has that signature."""

    form = int8.SAVEDMODEL_FORM

    def __init__(self, folder: Path, max_length: int, pack: bool = True, op_threads: int | None = None):
        try:
            import tensorflow as tf
        except ImportError:
            raise ModelError("This install has no TensorFlow to serve the float32 SavedModel: the int8 image "
                             "serves int8 forms only (serve.runtime int8 or auto).") from None
        if op_threads:
            limit_tf_threads(op_threads)
        self._tf, self.max_length = tf, max_length
        self._model = tf.saved_model.load(str(folder / SAVED_MODEL))
        self._signatures = self._model.signatures
        self.signatures = frozenset(self._signatures)
        self._packed = self._signatures.get(packing.SIGNATURE) if pack else None

    def run(self, rows, outputs, signature):
        tf = self._tf
        if signature == SERVING_DEFAULT and self._packed is not None \
                and packing.worth_packing([len(r) for r in rows]):
            inputs = packing.pack(rows, self.max_length)
            result = self._packed(**{k: tf.constant(v) for k, v in inputs.items()})
        else:
            input_ids, mask = tokenization.pad(rows)
            result = self._signatures[signature](input_ids=tf.constant(input_ids),
                                                 attention_mask=tf.constant(mask))
        return {name: result[name].numpy() for name in outputs}

    def ngram_weights(self):
        head = getattr(self._model, "ngram", None)
        return None if head is None else (head.idf.numpy(), head.kernel.numpy())


class LiteRTForward(Forward):
    """The int8 form in LiteRT: `calls` interpreters (an interpreter runs one call at a time), each on
    `op_threads` threads."""

    form = int8.INT8_FORM
    signatures = frozenset({SERVING_DEFAULT})

    def __init__(self, folder: Path, calls: int = 1, op_threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelError(f"The int8 runtime needs LiteRT, which is not installed: {INSTALL_INT8}."
                             ) from None
        self.folder, path = folder, folder / INT8_FILE
        if not path.is_file():
            raise ModelError(f"{path} is missing: the bundle lists an int8 form it does not hold.")
        self._idle = queue.SimpleQueue()
        try:
            for _ in range(max(1, calls)):
                interpreter = Interpreter(model_path=str(path), num_threads=op_threads or os.cpu_count())
                self._idle.put(interpreter.get_signature_runner(SERVING_DEFAULT))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path} can't be loaded by LiteRT ({str(exc).splitlines()[0]}); "
                             "export the bundle's int8 form again.") from None

    def run(self, rows, outputs, signature):
        """One call per length bucket of `rows` (LiteRT has no packed form, and a text costs the same alone as
        in a batch: padding is what a mixed batch would waste)."""
        logits, runner = [None] * len(rows), self._idle.get()
        try:
            for group in _by_length(rows):
                input_ids, mask = tokenization.pad([rows[i] for i in group])
                for i, row in zip(group, runner(input_ids=input_ids, attention_mask=mask)["logits"]):
                    logits[i] = row
        finally:
            self._idle.put(runner)
        return {"logits": np.stack(logits)}

    def ngram_weights(self):
        path = self.folder / NGRAM_FILE
        if not path.is_file():
            return None
        with np.load(path) as weights:
            return weights["idf"], weights["kernel"]


def _by_length(rows: list, bounds=LENGTH_BUCKETS) -> list[list[int]]:
    """The indices of `rows` grouped by length bucket (a row longer than every bound: the last group)."""
    groups: dict = {}
    for i, row in enumerate(rows):
        groups.setdefault(next((b for b in bounds if len(row) <= b), None), []).append(i)
    return list(groups.values())


def choose(folder: Path, metadata: dict, runtime: str, pack: bool = True, calls: int = 1,
           op_threads: int | None = None) -> Forward:
    """The form `runtime` asks for of the bundle in `folder` (see the module's docstring)."""
    if runtime not in RUNTIMES:
        raise ModelError(f"The runtime is one of {', '.join(RUNTIMES)}, not {runtime!r}.")
    if runtime != "savedmodel":
        reason = int8.refusal(metadata)
        if reason is None:
            try:
                return _int8_form(folder, metadata, calls, op_threads)
            except ModelError as exc:
                if runtime == "int8":
                    raise
                reason = str(exc).rstrip(".")
        log.warning("%s: serving the float32 SavedModel, not the int8 form: %s", folder.name, reason)
    return SavedModelForward(folder, metadata["max_length"], pack, op_threads)


def _int8_form(folder: Path, metadata: dict, calls: int, op_threads: int | None) -> LiteRTForward:
    if int8.INT8_FORM not in int8.forms(metadata):
        raise ModelError(f"{folder} holds no int8 form (trained before emoji-reco wrote one); serve it with "
                         "--runtime savedmodel or auto.")
    return LiteRTForward(folder, calls, op_threads)


def check_int8(folder: Path, metadata: dict) -> None:
    """Raise ModelError, naming the file or the extra to install, unless the bundle's int8 form loads (or the
    gate refused it, so its SavedModel serves): a server told to serve int8 refuses to start."""
    if int8.refusal(metadata) is None:
        _int8_form(folder, metadata, 1, 1)
