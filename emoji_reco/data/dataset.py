"""The prepare step: read tweets (`readers`), clean them, label them, split them."""
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
from sklearn.model_selection import train_test_split

from emoji_reco.data import readers
from emoji_reco.data.cleaning import clean_text
from emoji_reco.data.demo import demo_tweets
from emoji_reco.data.text import find_emojis, is_emoji, normalize_emoji, strip_emojis
from emoji_reco.errors import DataError
from emoji_reco.settings.sections import DataSettings, DemoSettings

SPLITS = ("train", "validation", "test")
DEMO_SOURCE = "demo"
# Bytes that are not UTF-8 are read as U+FFFD; a row holding one is dropped (and counted), not guessed at.
_UNDECODABLE = "\ufffd"


@dataclass
class Prepared:
    """Cleaned splits (columns `text`, `label` as class id), the emoji of each class id, and a report."""

    splits: dict
    emojis: list
    report: dict = field(default_factory=dict)


def prepare(data: DataSettings, demo: DemoSettings) -> Prepared:
    """Read, clean, label and split the data the settings name (the demo set when no path is given).

    With `test_path`, the test split is that file (same cleaning, the same emojis, texts seen in
    training removed) and train/validation come from `path`.
    """
    path = data.path or DEMO_SOURCE
    rows, dropped, read, shape, label_map = _clean_rows(path, data, demo)
    rows = _keep_top(rows, data.top_emojis, dropped)
    rows = _dedupe(rows, dropped)
    if data.sample and len(rows) > data.sample:
        dropped["sampled_out"] += len(rows) - data.sample
        rows = rows.sample(n=data.sample, random_state=data.seed)
    emojis = _class_order(rows, label_map)
    _check_class_sizes(rows, data.min_examples_per_class, path)
    labels = {e: i for i, e in enumerate(emojis)}
    rows = _with_label_ids(rows, labels)
    report = {"source": str(path), "shape": shape, "rows_read": read, "rows_kept": int(len(rows))}
    if data.test_path:
        test, test_dropped, test_read, _, _ = _clean_rows(data.test_path, data, demo)
        known = test.emoji.isin(labels)
        test_dropped["not_a_training_emoji"] += int((~known).sum())
        test = _dedupe(test[known], test_dropped)
        seen = test.text.isin(set(rows.text))
        test_dropped["in_training_data"] += int(seen.sum())
        test = test[~seen]
        splits = _split(rows, data.seed, data.validation_fraction, 0.0, path)
        splits["test"] = _with_label_ids(test, labels)
        report.update(test_source=str(data.test_path), test_rows_read=test_read,
                      test_dropped=_counts(test_dropped))
    else:
        splits = _split(rows, data.seed, data.validation_fraction, data.test_fraction, path)
    report["dropped"] = _counts(dropped)
    report["splits"] = {name: {emojis[k]: int(v) for k, v in sorted(Counter(df.label).items())}
                        for name, df in splits.items()}
    return Prepared(splits=splits, emojis=emojis, report=report)


def _with_label_ids(rows: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """`text` and `label` (class id) columns, renumbered from 0."""
    return rows.assign(label=rows.emoji.map(labels).astype("int64"))[["text", "label"]].reset_index(drop=True)


def _counts(counter: Counter) -> dict:
    """The non-zero counts, by reason, as plain ints."""
    return {k: int(v) for k, v in sorted(counter.items()) if v}


def _clean_rows(path: str, data: DataSettings, demo: DemoSettings):
    """Cleaned `text`/`emoji` rows of one source, the drop counts, rows read, the shape and the label map."""
    if path == DEMO_SOURCE:
        frame, read_report, label_map = demo_tweets(demo.rows, demo.seed), {}, None
    else:
        frame, read_report = readers.read_table(path, data.format)
        frame = frame.reset_index(drop=True)
        label_map = readers.load_label_map(data.labels, path)
    if frame.empty:
        raise DataError(f"{path} holds no rows. Point --data at a file with tweets in it.")
    read = int(len(frame) + read_report.get("malformed_row", 0))
    undecodable = frame.apply(lambda column: column.str.contains(_UNDECODABLE, regex=False)).any(axis=1)
    frame = frame[~undecodable]
    read_report = {**read_report, "undecodable_text": int(undecodable.sum())}
    text_col, label_col = readers.columns(frame, data.text_column, data.label_column, path)
    shape = data.shape
    if shape == "auto":
        shape = "labeled" if label_col else "raw"
    dropped = Counter({k: v for k, v in read_report.items() if v})
    if shape == "labeled":
        if not label_col:
            raise DataError(f"{path} has no label column (looked for {', '.join(readers.LABEL_COLUMNS)}); "
                            "set data.label_column in the config, or data.shape to 'raw' "
                            "for tweets with emojis.")
        rows = _labeled(frame[text_col], frame[label_col], label_map, path, dropped)
    else:
        rows = _raw(frame[text_col], dropped)
    return rows, dropped, read, shape, label_map


def _dedupe(rows: pd.DataFrame, dropped: Counter) -> pd.DataFrame:
    before = len(rows)
    rows = rows.drop_duplicates(["text", "emoji"])
    dropped["duplicate"] += before - len(rows)
    return rows


def _labeled(texts: pd.Series, labels: pd.Series, label_map: dict | None, path: str,
             dropped: Counter) -> pd.DataFrame:
    raw_text = texts.fillna("").astype(str)
    text = raw_text.map(clean_text)
    label = labels.fillna("").astype(str).str.strip()
    missing_text = raw_text.str.strip() == ""
    empty = ~missing_text & (text == "")
    missing_label = ~missing_text & ~empty & (label == "")
    numeric = label[label != ""].str.fullmatch(r"-?\d+")
    if len(numeric) and numeric.all():
        if label_map is None:
            raise DataError(f"The labels in {path} are numbers but there is no label map: put a labels.json "
                            "(id → emoji) beside the data, or set data.labels in the config.")
        emoji = label.map(lambda v: label_map.get(str(int(v))) if v else None)
    else:
        emoji = label.map(lambda v: normalize_emoji(v) if v else None)
    labeled = ~missing_text & ~empty & ~missing_label
    unknown = labeled & emoji.isna()
    not_emoji = labeled & ~unknown & ~emoji.map(is_emoji)
    for reason, mask in (("missing_text", missing_text), ("empty_after_cleaning", empty),
                         ("missing_label", missing_label), ("unknown_label", unknown),
                         ("not_an_emoji", not_emoji)):
        dropped[reason] += int(mask.sum())
    keep = labeled & ~unknown & ~not_emoji
    return pd.DataFrame({"text": text[keep], "emoji": emoji[keep]})


def _raw(texts: pd.Series, dropped: Counter) -> pd.DataFrame:
    raw_text = texts.fillna("").astype(str)
    found = raw_text.map(lambda t: sorted(set(find_emojis(t))))
    missing_text = raw_text.str.strip() == ""
    dropped["missing_text"] += int(missing_text.sum())
    return pd.DataFrame({"text": raw_text[~missing_text], "emojis": found[~missing_text]})


def _keep_top(rows: pd.DataFrame, top: int | None, dropped: Counter) -> pd.DataFrame:
    """Labeled rows: keep the `top` most frequent classes. Raw rows: keep tweets with exactly one of them."""
    if "emojis" not in rows:
        if not top:
            return rows
        keep = set(rows.emoji.value_counts().index[:top])
        mask = rows.emoji.isin(keep)
        dropped["not_a_top_emoji"] += int((~mask).sum())
        return rows[mask]
    counts = Counter(e for found in rows.emojis for e in found)
    keep = {e for e, _ in counts.most_common(top or None)}
    top_found = rows.emojis.map(lambda found: [e for e in found if e in keep])
    n = top_found.map(len)
    dropped["no_top_emoji"] += int((n == 0).sum())
    dropped["several_top_emojis"] += int((n > 1).sum())
    single = rows[n == 1]
    text = single.text.map(lambda t: clean_text(strip_emojis(t)))
    empty = text == ""
    dropped["empty_after_cleaning"] += int(empty.sum())
    return pd.DataFrame({"text": text[~empty], "emoji": top_found[n == 1][~empty].str[0]})


def _class_order(rows: pd.DataFrame, label_map: dict | None) -> list:
    present = set(rows.emoji)
    if label_map:
        ordered = [label_map[k] for k in sorted(label_map, key=lambda k: (len(k), k))]
        return [e for e in dict.fromkeys(ordered) if e in present]
    counts = rows.emoji.value_counts()
    return sorted(present, key=lambda e: (-counts[e], e))


def _check_class_sizes(rows: pd.DataFrame, minimum: int, path: str) -> None:
    counts = rows.emoji.value_counts()
    if len(counts) < 2:
        raise DataError(f"{path} yields {len(counts)} usable class(es) after cleaning; at "
                        f"least 2 are needed. "
                        "Check the label column, or for raw tweets that they contain emojis.")
    small = counts[counts < max(minimum, 3)]
    if len(small):
        listed = ", ".join(f"{e} ({n})" for e, n in small.items())
        raise DataError(f"{path}: too few rows for {listed}; each class needs at least {max(minimum, 3)}. "
                        "Add examples, lower data.min_examples_per_class, or lower data.top_emojis.")


def _split(rows: pd.DataFrame, seed: int, val: float, test: float, path: str) -> dict:
    try:
        rest, test_rows = (train_test_split(rows, test_size=test, stratify=rows.label, random_state=seed)
                           if test else (rows, rows.iloc[:0]))
        train_rows, val_rows = train_test_split(rest, test_size=val / (1 - test), stratify=rest.label,
                                                random_state=seed)
    except ValueError as exc:
        raise DataError(f"{path}: {len(rows)} rows in {rows.label.nunique()} classes are too "
                        f"few for a stratified "
                        f"train/validation/test split ({exc}). Add rows, or raise "
                        f"data.validation_fraction and "
                        "data.test_fraction.") from exc
    return {name: df.reset_index(drop=True) for name, df in zip(SPLITS, (train_rows, val_rows, test_rows))}
