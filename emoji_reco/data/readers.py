"""Read tweet files (CSV, JSON Lines, Parquet; one file or a folder; local or s3://) into frames of strings, find
their text and label columns, and read a label map."""
import gzip
import json
import os
import tempfile

import pandas as pd
import pyarrow.parquet as pq

from emoji_reco import storage
from emoji_reco.data.text import normalize_emoji
from emoji_reco.errors import DataError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
TEXT_COLUMNS = ("text", "tweet", "content", "body")
LABEL_COLUMNS = ("label", "emoji", "labels", "target")


def read_table(uri: str, fmt: str = "auto") -> tuple[pd.DataFrame, dict]:
    """Read one file, or every data file in a folder/prefix, into one frame of strings."""
    frames, malformed = [], 0
    for _, frame, bad in read_chunks(uri, fmt):
        frames.append(frame)
        malformed += bad
    return pd.concat(frames, ignore_index=True), {"malformed_row": malformed}


def read_chunks(uri: str, fmt: str = "auto", rows: int | None = None):
    """Yield (file, frame of strings, malformed rows) for every file of `uri` in order, in chunks of at most `rows`
    rows (None: one chunk per file), holding one chunk in memory at a time."""
    with tempfile.TemporaryDirectory(prefix="emoji-reco-data-") as tmp:
        paths = storage.fetch_inputs(uri, tmp, suffixes=tuple(FORMATS), exclude=("labels.json",))
        if not paths:
            raise DataError(f"No data files (CSV, JSON Lines or Parquet) found in {uri}.")
        for local, origin in paths:
            for frame, bad in _read_one(local, origin, fmt, rows):
                yield origin, frame, bad


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as strings: a null is "" (never "None" or "nan"), a whole-number float is an integer ("3", not
    "3.0", as a label column with a null holds), bytes are decoded (undecodable bytes as U+FFFD)."""

    def text(value) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    out = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_float_dtype(column) and column.dropna().map(float.is_integer).all():
            column = column.astype("Int64")
        out[name] = column.astype(object).where(column.notna(), "").map(text)
    return pd.DataFrame(out, index=frame.index)


def _format_of(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = path.lower().removesuffix(".gz")
    suffix = os.path.splitext(name)[1]
    if suffix not in FORMATS:
        raise DataError(f"Can't tell the format of {path}: name it .csv, .jsonl or .parquet "
                        "(optionally .gz), or set data.format in the config.")
    return FORMATS[suffix]


def _read_one(local: str, origin: str, fmt: str, rows: int | None):
    fmt = _format_of(origin, fmt)
    bad_lines = []
    try:
        if os.path.getsize(local) == 0:
            chunks = iter([pd.DataFrame()])
        elif fmt == "csv":  # index_col=False: a row with an extra field is malformed, never an index
            chunks = pd.read_csv(local, dtype=str, keep_default_na=False, engine="python", encoding="utf-8",
                                 encoding_errors="replace", on_bad_lines=lambda line: bad_lines.append(line),
                                 index_col=False, chunksize=rows)
            chunks = iter([chunks]) if rows is None else chunks
        elif fmt == "jsonl":
            chunks = _read_jsonl(local, bad_lines, rows)
        elif fmt == "parquet":
            chunks = (_strings(b.to_pandas()) for b in pq.ParquetFile(local).iter_batches(batch_size=rows or 65536))
        else:
            raise DataError(f"Unknown data.format {fmt!r}: use auto, csv, jsonl or parquet.")
        seen, empty = 0, True
        for frame in chunks:
            yield frame, len(bad_lines) - seen
            seen, empty = len(bad_lines), False
        if empty:  # a file with a header and no rows: its columns still say whether it has a text column
            yield (_strings(pq.read_table(local).to_pandas()) if fmt == "parquet" else
                   pd.read_csv(local, dtype=str, nrows=0) if fmt == "csv" else pd.DataFrame()), 0
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types; the user needs the file and the reason
        raise DataError(f"Can't read {origin} as {fmt}: {exc}. Check the file, or set data.format.") from exc


def _read_jsonl(path: str, bad_lines: list, rows: int | None):
    opener = gzip.open if path.endswith(".gz") else open
    records = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict):
                records.append({str(k): v if v is None or isinstance(v, (str, int, float)) else json.dumps(v)
                                for k, v in record.items()})
            else:
                bad_lines.append(line)
            if rows and len(records) == rows:
                yield _strings(pd.DataFrame.from_records(records))
                records = []
    if records:
        yield _strings(pd.DataFrame.from_records(records))


def columns(frame: pd.DataFrame, settings: dict, path: str) -> tuple[str, str | None]:
    lower = {str(c).strip().lower(): c for c in frame.columns}

    def pick(configured, candidates, what):
        if configured:
            if configured not in frame.columns:
                raise DataError(f"{path} has no column {configured!r} (data.{what}_column); "
                                f"its columns are {list(frame.columns)}.")
            return configured
        return next((lower[c] for c in candidates if c in lower), None)

    text_col = pick(settings.get("text_column"), TEXT_COLUMNS, "text")
    if not text_col:
        raise DataError(f"{path} has no text column (looked for {', '.join(TEXT_COLUMNS)}; found "
                        f"{list(frame.columns)}). Rename it, or set data.text_column in the config.")
    return text_col, pick(settings.get("label_column"), LABEL_COLUMNS, "label")


def load_label_map(configured: str | None, data_path: str) -> dict | None:
    """Label id → emoji from `data.labels`, else a labels.json beside the data."""
    candidates = [configured] if configured else [storage.sibling(data_path, "labels.json")]
    for uri in candidates:
        text = storage.read_text(uri)
        if text is None:
            if configured:
                raise DataError(f"Label map {uri} not found. Fix data.labels in the config.")
            continue
        try:
            mapping = json.loads(text)
            return {str(k).strip(): normalize_emoji(v) for k, v in mapping.items()}
        except (ValueError, AttributeError) as exc:
            raise DataError(f"Label map {uri} is not a JSON object of label id → emoji: {exc}.") from exc
    return None


def load_labeled_texts(path: str) -> tuple[pd.DataFrame, dict]:
    """A scoring input as `text` plus `emoji` when labels are present (for `emoji-reco predict --input`), and the
    rows the reader dropped, by reason."""
    frame, dropped = read_table(path)
    return labeled_texts(frame, path, load_label_map(None, path)), dropped


def labeled_texts(frame: pd.DataFrame, path: str, label_map: dict | None) -> pd.DataFrame:
    """`text`, plus `emoji` (the label through `label_map`, or as written) when the frame has a label column."""
    text_col, label_col = columns(frame, {}, path)
    out = pd.DataFrame({"text": frame[text_col].fillna("").astype(str)})
    if label_col:
        labels = frame[label_col].fillna("").astype(str).str.strip()
        out["emoji"] = labels.map(lambda v: (label_map or {}).get(v, normalize_emoji(v)) if v else None)
    return out
