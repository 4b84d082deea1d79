"""The one tokenizer path used for TFRecords, training bundles and serving: fast tokenizers only."""
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from emoji_reco.data.cleaning import tokenizer_input
from emoji_reco.errors import ModelError

TOKENIZER_FILE = "tokenizer.json"


def save_fast_tokenizer(model_dir: Path, target: Path) -> Path:
    """Write the base model's fast tokenizer (tokenizer.json and friends) into `target`."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    if not tok.is_fast:
        raise ModelError(f"{model_dir} has no fast tokenizer; emoji-reco needs one (a tokenizer.json).")
    tok.save_pretrained(str(target))
    return Path(target)


def load(folder: Path, max_length: int) -> Tokenizer:
    """A fast tokenizer from `folder`, truncating to `max_length` tokens, not padding."""
    path = Path(folder) / TOKENIZER_FILE
    if not path.is_file():
        raise ModelError(f"No {TOKENIZER_FILE} in {folder}.")
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


def encode(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids per text (with special tokens), truncated, unpadded; a text is read only as far as
    `tokenizer_input` says."""
    cap = tok.truncation["max_length"] if tok.truncation else None
    texts = [tokenizer_input(t, cap) for t in texts] if cap else list(texts)
    return [e.ids for e in tok.encode_batch_fast(texts)]  # _fast: no offsets, same ids


def pad(ids: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pad to the longest row: (input_ids, attention_mask) as int32 arrays."""
    width = max((len(r) for r in ids), default=1)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(ids), width), dtype=np.int32)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return input_ids, mask
