"""Read tweet files (CSV, JSON Lines, Parquet; one file or a folder; local or s3://) into frames of strings,
find their text and label columns, and read a label map."""
import collections
import csv
import gzip
import io
import itertools
import json
import os

import pandas as pd
import pyarrow.parquet as pq

from emoji_reco import storage
from emoji_reco.data.text import normalize_emoji
from emoji_reco.errors import DataError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
TEXT_COLUMNS = ("text", "tweet", "content", "body")
LABEL_COLUMNS = ("label", "emoji", "labels", "target")
ORIGIN = ("input_file", "row")  # where a row came from, kept through scoring


def read_table(uri: str, fmt: str = "auto") -> tuple[pd.DataFrame, dict]:
    """Read one file, or every data file in a folder/prefix, into one frame of strings, indexed by each row's
    number in its file (see `read_chunks`), with an `input_file` column when there are several files."""
    frames, malformed = [], 0
    for origin, frame, bad in read_chunks(uri, fmt):
        frames.append(frame.assign(input_file=origin))
        malformed += bad
    table = pd.concat(frames)
    return (table if table.input_file.nunique() > 1 else table.drop(columns="input_file"),
            {"malformed_row": malformed})


def read_chunks(uri: str, fmt: str = "auto", rows: int | None = None):
    """Yield (file, frame of strings, malformed rows) for every file of `uri` in order, in chunks of at most
    `rows` rows (None: one chunk per file), holding one chunk in memory at a time; an S3 file streams
    (`storage.open_binary`), never copied whole. A frame's index, `row`, is each row's number in its file,
    from 1 with the malformed rows counted, so an output row can be traced to its input row."""
    files = storage.data_files(uri, suffixes=tuple(FORMATS), exclude=("labels.json",))
    if not files:
        raise DataError(f"No data files (CSV, JSON Lines or Parquet) found in {uri}.")
    for origin, size in files:
        for frame, bad in _read_one(origin, size, fmt, rows):
            yield origin, frame, bad


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as strings: a null is "" (never "None" or "nan"), a whole-number float is an integer ("3",
    not "3.0", as a label column with a null holds), bytes are decoded (undecodable bytes as U+FFFD)."""

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


def _read_one(origin: str, size: int, fmt: str, rows: int | None):
    fmt = _format_of(origin, fmt)
    bad_lines = []
    try:
        if size == 0:
            chunks = iter([pd.DataFrame()])
        elif fmt == "csv":
            chunks = _read_csv(origin, size, bad_lines, rows)
        elif fmt == "jsonl":
            chunks = _read_jsonl(origin, size, bad_lines, rows)
        elif fmt == "parquet":
            chunks = _read_parquet(origin, size, rows)
        else:
            raise DataError(f"Unknown data.format {fmt!r}: use auto, csv, jsonl or parquet.")
        seen, empty = 0, True
        for frame in chunks:
            yield frame, len(bad_lines) - seen
            seen, empty = len(bad_lines), False
        if empty:  # a file with a header and no rows: its columns still say whether it has a text column
            yield (_strings(pq.read_table(storage.open_binary(origin, size)).to_pandas()) if fmt == "parquet"
                   else
                   pd.DataFrame(columns=_csv_header(origin, size)) if fmt == "csv" else pd.DataFrame()), 0
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types; the user needs the file and the reason
        raise DataError(f"Can't read {origin} as {fmt}: {exc}. Check the file, or set data.format.") from exc


def _open_text(origin: str, size: int):
    binary = storage.open_binary(origin, size)
    if origin.endswith(".gz"):
        binary = gzip.GzipFile(fileobj=binary)
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")


def _frames(numbered, rows: int | None, build):
    """Frames of at most `rows` (None: all) of the (row number, record) pairs, indexed by row number."""
    while batch := list(itertools.islice(numbered, rows)):
        numbers, records = zip(*batch)
        yield build(list(records), pd.Index(numbers, name="row"))


def _read_csv(origin: str, size: int, bad_lines: list, rows: int | None):
    """A CSV of strings by its header. A row with more fields than the header is malformed, a shorter one
    padded."""
    with _open_text(origin, size) as handle:
        records = _csv_records(handle, bad_lines)
        header = next(records, None) or []
        names = [f"{h}.{header[:i].count(h)}" if h in header[:i] else h for i, h in enumerate(header)]

        def numbered():
            for n, fields in enumerate(records, 1):
                if fields is not None and len(fields) > len(names):
                    bad_lines.append(fields)
                elif fields is not None:
                    yield n, fields + [""] * (len(names) - len(fields))

        yield from _frames(numbered(), rows, lambda r, index: pd.DataFrame(r, columns=names, index=index))


def _csv_header(origin: str, size: int) -> list[str]:
    with _open_text(origin, size) as handle:
        return next(_csv_records(handle, []), None) or []


def _csv_records(handle, bad_lines: list):
    """The records of a CSV as lists of fields, blank lines skipped. A record with a quote left open (which
    would swallow the rest of the file) or a stray quote is None, its first line in `bad_lines`, and reading
    resumes on its next line, so no row after it is lost; csv's field limit (128 KiB) bounds the text read
    again."""
    pending, replay = [], collections.deque()  # the current record's lines; lines to read again

    def lines():
        while line := replay.popleft() if replay else handle.readline():
            pending.append(line)
            yield line

    while True:
        try:
            for fields in csv.reader(lines(), strict=True):
                pending.clear()
                if fields:
                    yield fields
            return
        except csv.Error:
            if not pending:
                return
            bad_lines.append(pending[0])
            replay.extendleft(reversed(pending[1:]))
            pending.clear()
            yield None


def _read_jsonl(origin: str, size: int, bad_lines: list, rows: int | None):
    """Every line that is a JSON object; any other non-blank line is malformed."""

    def records(handle):
        for n, line in enumerate((line for line in handle if line.strip()), 1):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict):
                yield n, {str(k): v if v is None or isinstance(v, (str, int, float)) else json.dumps(v)
                          for k, v in record.items()}
            else:
                bad_lines.append(line)

    with _open_text(origin, size) as handle:
        yield from _frames(records(handle), rows,
                           lambda r, index: _strings(pd.DataFrame.from_records(r, index=index)))


def _read_parquet(origin: str, size: int, rows: int | None):
    first = 1
    for batch in pq.ParquetFile(storage.open_binary(origin, size)).iter_batches(batch_size=rows or 65536):
        frame = _strings(batch.to_pandas())
        frame.index = pd.RangeIndex(first, first + len(frame), name="row")
        first += len(frame)
        yield frame


def columns(frame: pd.DataFrame, text_column: str | None, label_column: str | None,
            path: str) -> tuple[str, str | None]:
    """The text column and the label column (None if none): the configured ones, else the first of the usual
    names."""
    lower = {str(c).strip().lower(): c for c in frame.columns}

    def pick(configured, candidates, what):
        if configured:
            if configured not in frame.columns:
                raise DataError(f"{path} has no column {configured!r} (data.{what}_column); "
                                f"its columns are {list(frame.columns)}.")
            return configured
        return next((lower[c] for c in candidates if c in lower), None)

    text_col = pick(text_column, TEXT_COLUMNS, "text")
    if not text_col:
        raise DataError(f"{path} has no text column (looked for {', '.join(TEXT_COLUMNS)}; found "
                        f"{list(frame.columns)}). Rename it, or set data.text_column in the config.")
    return text_col, pick(label_column, LABEL_COLUMNS, "label")


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
    """A scoring input as `text` plus `emoji` when labels are present (for `emoji-reco predict --input`), and
    the rows the reader dropped, by reason."""
    frame, dropped = read_table(path)
    return labeled_texts(frame, path, load_label_map(None, path)), dropped


def labeled_texts(frame: pd.DataFrame, path: str, label_map: dict | None) -> pd.DataFrame:
    """Where each row came from (`input_file` when there are several, `row`), `text`, plus `emoji` (the label
    through `label_map`, or as written) when the frame has a label column."""
    text_col, label_col = columns(frame, None, None, path)
    out = frame[[c for c in ORIGIN if c in frame]].copy()
    out["row"] = frame.index if frame.index.name == "row" else range(1, len(frame) + 1)
    out["text"] = frame[text_col].fillna("").astype(str)
    if label_col:
        labels = frame[label_col].fillna("").astype(str).str.strip()
        out["emoji"] = labels.map(lambda v: (label_map or {}).get(v, normalize_emoji(v)) if v else None)
    return out.reset_index(drop=True)
