"""Loading, cleaning, labelling and splitting: each input shape, each drop reason, each early-stop message."""
import csv
import json

import emoji as emoji_lib
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from emoji_reco.data import dataset, demo, readers
from emoji_reco.data.cleaning import clean_text, is_empty
from emoji_reco.data.text import find_emojis, normalize_emoji
from emoji_reco.errors import DataError
from helpers import examples
from helpers.datasets import labeled_rows, prepare


def test_clean_text_removes_mentions_urls_entities_and_space():
    assert clean_text("  @bob check https://t.co/x &amp; www.a.com   now\n\tok ") == "check & now ok"
    assert clean_text(None) == "" and clean_text(3.5) == ""


def test_cleaning_drops_exactly_the_control_surrogate_and_private_use_characters():
    """clean_text's one-regex pass drops what a loop over unicodedata categories did, for every code point."""
    import sys
    import unicodedata

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        dropped = unicodedata.category(char) in ("Cc", "Cs", "Co") or char == "\ufffd"
        assert (clean_text(f"a{char}b") == "a b") == dropped or char.isspace(), hex(code)


@settings(max_examples=examples(300), deadline=None)
@given(st.text(st.sampled_from(list(" \t\n\x00\x7f@&#;amp:/.wWx9_😂\u0301\u200b\ufffd")),
               max_size=30) | st.text(max_size=30))
def test_the_quick_emptiness_check_agrees_with_cleaning(text):
    assert is_empty(text) == (clean_text(text) == "")


def test_emoji_normalisation_joins_spellings():
    assert normalize_emoji("❤️") == normalize_emoji("❤") == "❤"
    assert find_emojis("so good 😂😂 and ❤️") == ["😂", "😂", "❤"]


def test_labeled_csv_with_emoji_labels_splits_stratified(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame(labeled_rows(20), columns=["TWEET", "LABEL"]).to_csv(path, index=False)
    prepared = prepare(path)
    assert prepared.emojis == ["🔥", "😂", "😭"]  # equal counts: ordered by character
    sizes = {k: len(v) for k, v in prepared.splits.items()}
    assert sizes == {"train": 48, "validation": 6, "test": 6}
    assert all(v.label.value_counts().tolist() == [v.label.value_counts().iloc[0]]
               * 3 for v in prepared.splits.values())
    assert prepared.report["rows_kept"] == 60 and prepared.report["dropped"] == {}
    again = prepare(path)
    assert all(again.splits[k].equals(prepared.splits[k]) for k in dataset.SPLITS)  # seeded


def test_integer_labels_use_labels_json_beside_the_data(tmp_path):
    rows = [(t, {"😂": 0, "😭": 1, "🔥": 2}[e]) for t, e in labeled_rows()]
    pd.DataFrame(rows, columns=["TWEET", "LABEL"]).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "labels.json").write_text(json.dumps({"0": "😂", "1": "😭", "2": "🔥", "3": "🤔"}))
    prepared = prepare(tmp_path / "t.csv")
    assert prepared.emojis == ["😂", "😭", "🔥"]  # label-map order, classes present only


def test_raw_tweets_get_their_label_from_the_emoji(tmp_path):
    texts = [f"so funny {i} 😂" for i in range(10)] + [f"sad {i} 😭😭" for i in range(10)]
    texts += ["no emoji here", "both 😂 and 😭", "😂", "fire 🔥"]
    path = tmp_path / "raw.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in texts), encoding="utf-8")
    prepared = prepare(path, top_emojis=2)
    assert prepared.report["shape"] == "raw"
    assert prepared.report["dropped"] == {"no_top_emoji": 2, "several_top_emojis": 1,
                                          "empty_after_cleaning": 1}
    train = pd.concat(prepared.splits.values())
    assert not any(find_emojis(t) for t in train.text)
    assert set(prepared.emojis) == {"😂", "😭"}


def test_every_drop_reason_is_counted(tmp_path):
    good = labeled_rows(10)
    bad = [("", "😂"), ("@only_a_mention", "😂"), ("no label", ""), ("weird label", "🦄"),
           (good[0][0], good[0][1])]
    path = tmp_path / "t.csv"
    pd.DataFrame(good + bad, columns=["text", "label"]).to_csv(path, index=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('too,many,fields,here\n')
    prepared = prepare(path, top_emojis=3)
    assert prepared.report["dropped"] == {"missing_text": 1, "empty_after_cleaning": 1, "missing_label": 1,
                                          "not_a_top_emoji": 1, "duplicate": 1, "malformed_row": 1}
    assert prepared.report["rows_read"] == len(good) + len(bad) + 1
    assert prepared.report["rows_kept"] == len(good)


def test_unknown_integer_label_is_counted(tmp_path):
    rows = [(t, {"😂": 0, "😭": 1, "🔥": 2}[e]) for t, e in labeled_rows()] + [("a text", 7)]
    pd.DataFrame(rows, columns=["TWEET", "LABEL"]).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "labels.json").write_text(json.dumps({"0": "😂", "1": "😭", "2": "🔥"}))
    assert prepare(tmp_path / "t.csv").report["dropped"] == {"unknown_label": 1}


def test_parquet_and_sampling(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame(labeled_rows(30), columns=["tweet", "emoji"]).to_parquet(path)
    prepared = prepare(path, sample=60)
    assert prepared.report["rows_kept"] == 60 and prepared.report["dropped"] == {"sampled_out": 30}


def test_a_folder_reads_every_data_file_in_it(tmp_path):
    rows = labeled_rows(10)
    pd.DataFrame(rows[:15], columns=["TWEET", "LABEL"]).to_csv(tmp_path / "a.csv.gz", index=False)
    pd.DataFrame(rows[15:], columns=["TWEET", "LABEL"]).to_csv(tmp_path / "b.csv", index=False)
    assert prepare(tmp_path).report["rows_kept"] == 30


@settings(max_examples=examples(80), deadline=None)
@given(texts=st.lists(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40),
                      max_size=30),
       chunk=st.integers(1, 7))
def test_a_well_formed_csv_reads_back_exactly_with_each_rows_number(tmp_path_factory, texts, chunk):
    """Quotes, commas, line breaks (\r too) and any other character inside a field: every row read whole,
    numbered."""
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["text", "n"]] + [[t, str(i)] for i, t in enumerate(texts, 1)])
    read = [(f, bad) for _, f, bad in readers.read_chunks(str(path), rows=chunk)]
    frame = pd.concat([f for f, _ in read])
    assert frame.text.tolist() == texts and frame.index.tolist() == list(range(1, len(texts) + 1))
    assert frame.n.tolist() == [str(i) for i in frame.index] and sum(bad for _, bad in read) == 0


def test_a_broken_csv_row_is_counted_and_no_row_after_it_is_lost(tmp_path):
    """A quote left open once swallowed the rest of the file silently; a row with extra fields is
    malformed."""
    lines = ["text,label", "one,😂", '"never closed,😂', "two,😭", "three,too,many", '"four, quoted",😂',
             '"stray"quote,😂', "five,😭", "", "short"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    frame, dropped = readers.read_table(str(tmp_path / "t.csv"))
    assert frame.text.tolist() == ["one", "two", "four, quoted", "five", "short"]
    assert frame.index.tolist() == [1, 3, 5, 7, 8] and frame.label.tolist() == ["😂", "😭", "😂", "😭", ""]
    assert dropped == {"malformed_row": 3}


def test_demo_data_is_deterministic_and_balanced():
    a, b = demo.demo_tweets(500, seed=3), demo.demo_tweets(500, seed=3)
    assert a.equals(b)
    assert set(a.LABEL) == set(demo.EMOJIS)
    assert a.LABEL.value_counts().min() > 30
    assert not a.equals(demo.demo_tweets(500, seed=4))


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.csv", "Data file not found: {p}/missing.csv"),
    (lambda p: (p / "t.csv").write_text("a,b\n1,2\n") and p / "t.csv", "has no text column"),
    (lambda p: (p / "t.csv").write_text("text,label\nhi,1\nyo,2\n") and p / "t.csv", "no label map"),
    (lambda p: (p / "t.csv").write_text("text,label\n" + "a,😂\nb,😂\nc,😂\nd,😭\n") and p / "t.csv",
     "too few rows for 😭 (1)"),
    (lambda p: (p / "t.csv").write_text("text,label\n") and p / "t.csv", "holds no rows"),
    (lambda p: (p / "t.txt").write_text("x") and p / "t.txt", "Can't tell the format"),
    (lambda p: (p / "t.parquet").write_bytes(b"not parquet") and p / "t.parquet", "Can't read"),
    (lambda p: (p / "t.csv").write_text("text\nonly text\n") and p / "t.csv", "0 usable class"),
    (lambda p: (p / "t.csv").write_text("text,label\n" + "".join(f"r{i},😂\nq{i},😭\n" for i in range(3)))
     and p / "t.csv", "too few for a stratified"),
])
def test_bad_inputs_stop_early_with_a_clear_message(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(DataError) as err:
        prepare(path)
    assert message.format(p=tmp_path) in str(err.value)
    assert str(path.name) in str(err.value) or "not found" in str(err.value)


def test_missing_configured_column_names_the_columns(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame(labeled_rows(), columns=["TWEET", "LABEL"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"no column 'body'.*\['TWEET', 'LABEL'\]"):
        prepare(path, text_column="body")


@settings(max_examples=examples(300), deadline=None)
@given(st.text())
def test_cleaning_never_crashes_on_any_text(text):
    cleaned = clean_text(text)
    assert cleaned == cleaned.strip() and "  " not in cleaned


@settings(max_examples=examples(40), deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_in_a_file_never_crash_prepare(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    header = "TWEET,LABEL\n" + "".join(f"row {i},{e}\n" for i, e in enumerate(["😂", "😭"] * 5))
    path.write_bytes(header.encode() + blob)
    try:
        prepared = prepare(path)
    except DataError:
        return
    assert prepared.report["rows_kept"] >= 3


def test_a_separate_test_file_is_the_test_split_without_training_texts(tmp_path):
    pd.DataFrame(labeled_rows(20), columns=["TWEET", "LABEL"]).to_csv(tmp_path / "train.csv", index=False)
    test_rows = [("unseen text one", "😂"), ("text number 3 for 😂", "😂"), ("unseen two", "🦄"),
                 ("unseen three", "🔥")]
    pd.DataFrame(test_rows, columns=["TWEET", "LABEL"]).to_csv(tmp_path / "test.csv", index=False)
    prepared = prepare(tmp_path / "train.csv", test_path=str(tmp_path / "test.csv"))
    assert prepared.splits["test"].text.tolist() == ["unseen text one", "unseen three"]
    assert prepared.report["test_dropped"] == {"in_training_data": 1, "not_a_training_emoji": 1}
    assert len(prepared.splits["train"]) + len(prepared.splits["validation"]) == 60


def test_undecodable_rows_nulls_and_non_emoji_labels_are_dropped_and_counted(tmp_path):
    rows = "".join(f"text {i} for {e},{e}\n" for e in ("😂", "😭") for i in range(6))
    (tmp_path / "t.csv").write_bytes(b"TWEET,LABEL\n" + rows.encode() + b"caf\xe9 latin-1,\xf0\x9f\x98\x82\n"
                                     + b"a greeting,hello\nanother,1.0\n")
    prepared = prepare(tmp_path / "t.csv")
    assert prepared.emojis == ["😂", "😭"] and prepared.report["rows_read"] == 15
    assert prepared.report["dropped"] == {"undecodable_text": 1, "not_an_emoji": 2}
    assert not any("\ufffd" in t or "latin" in t for split in prepared.splits.values() for t in split.text)


def test_parquet_and_json_nulls_are_missing_values_not_the_texts_none_or_nan(tmp_path):
    texts = [f"tweet {i}" for i in range(12)] + [None, "no label"]
    labels = [0.0, 1.0] * 6 + [1.0, None]  # one null turns an integer column into floats
    pd.DataFrame({"text": texts, "label": labels}).to_parquet(tmp_path / "t.parquet")
    (tmp_path / "labels.json").write_text(json.dumps({"0": "😂", "1": "😭"}))
    prepared = prepare(tmp_path / "t.parquet")
    assert prepared.emojis == ["😂", "😭"]  # not "0.0", "1.0", "nan"
    assert prepared.report["dropped"] == {"missing_text": 1, "missing_label": 1}
    kept = {t for split in prepared.splits.values() for t in split.text}
    assert "None" not in kept and "nan" not in kept and len(kept) == 12
    lines = [json.dumps({"text": t, "label": v}) for t, v in zip(texts, [0, 1] * 6 + [1, None])]
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + '\n{"text": "deep", "label": ' + "[" * 5000 + "\n")
    again = prepare(tmp_path / "t.jsonl")
    assert again.emojis == ["😂", "😭"] and again.report["dropped"] == {
        "malformed_row": 1, "missing_text": 1, "missing_label": 1}


def test_an_empty_file_and_single_class_data_stop_with_one_clear_message(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="holds no rows"):
        prepare(tmp_path / "empty.csv")
    pd.DataFrame(labeled_rows(10, emojis=("😂",)),
                 columns=["TWEET", "LABEL"]).to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(DataError, match="1 usable class"):
        prepare(tmp_path / "one.csv")


CELLS = st.one_of(st.none(),
                  st.sampled_from(["😂", "😭", "🔥", "0", "1", "2", "hello", "", " ", "nan", "None"]),
                  st.text(max_size=30), st.integers(-3, 5), st.floats(allow_nan=True))


@settings(max_examples=examples(60), deadline=None)
@given(fmt=st.sampled_from(["csv", "jsonl", "parquet", "csv", "jsonl", "parquet", "bytes"]),
       encoding=st.sampled_from(["utf-8"] * 4 + ["latin-1", "utf-16"]),
       rows=st.lists(st.tuples(st.text(min_size=1, max_size=20), st.sampled_from(["😂", "😭", "0", "1"])),
                     min_size=10, max_size=40)
       .flatmap(lambda good: st.lists(st.tuples(CELLS, CELLS), max_size=10).map(lambda noise: good + noise)),
       raw=st.binary(max_size=300),
       columns=st.sampled_from([("text", "label"), ("TWEET", "LABEL")] * 3 + [("body", "x"), ("a", "b")]))
def test_random_files_give_a_clean_result_or_a_clear_data_error(
        tmp_path_factory, fmt, encoding, rows, raw, columns):
    folder = tmp_path_factory.mktemp("fuzz")
    frame = pd.DataFrame(rows, columns=list(columns)).astype(object)
    path = folder / f"data.{'csv' if fmt == 'bytes' else fmt}"
    if fmt == "bytes":
        path.write_bytes(raw)
    elif fmt == "csv":
        path.write_bytes(frame.to_csv(index=False).encode(encoding, "replace"))
    elif fmt == "jsonl":
        path.write_bytes(frame.to_json(orient="records", lines=True,
                                       force_ascii=False).encode(encoding, "replace"))
    else:
        frame.astype(str).where(frame.notna(), None).to_parquet(path)
    (folder / "labels.json").write_text(json.dumps({"0": "😂", "1": "😭", "2": "🔥"}))
    try:
        prepared = prepare(path, min_examples_per_class=1, validation_fraction=0.2, test_fraction=0.2)
    except DataError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        event("DataError")
        return
    event("prepared")
    emojis = prepared.emojis
    assert len(emojis) >= 2 and all(emoji_lib.purely_emoji(e) for e in emojis)
    # a tweet may say "None"
    written = {cell.strip() for row in rows for cell in row if isinstance(cell, str)}
    for split in prepared.splits.values():
        assert split.label.between(0, len(emojis) - 1).all()
        assert all(isinstance(t, str) and t.strip()
                   and (t not in ("None", "nan") or t in written) for t in split.text)
        assert not any("\ufffd" in t for t in split.text)
    assert prepared.report["rows_kept"] == sum(len(s) for s in prepared.splits.values())
