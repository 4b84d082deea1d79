"""The readers, file by file and function by function, with exact expectations: formats, row numbers, strings
out of any cell, empty files, column finding, label maps and the table scoring reads."""
import gzip

import pandas as pd
import pytest

from emoji_reco.data import readers
from emoji_reco.data.text import normalize_emoji
from emoji_reco.errors import DataError


def nulls_as_none(column) -> list:
    return [None if pd.isna(v) else v for v in column]


def chunks(path, rows=None, fmt="auto"):
    return list(readers.read_chunks(str(path), fmt, rows))


def test_one_file_reads_as_one_table_and_a_folder_adds_where_each_row_came_from(tmp_path):
    (tmp_path / "a.csv").write_text("text\none\n\"two, quoted\"\n")
    table, dropped = readers.read_table(str(tmp_path / "a.csv"))
    assert table.text.tolist() == ["one", "two, quoted"]
    assert "input_file" not in table and dropped == {"malformed_row": 0}
    assert table.index.tolist() == [1, 2] and table.index.name == "row"
    (tmp_path / "b.jsonl").write_text('{"text": "three"}\nnot json\n')
    table, dropped = readers.read_table(str(tmp_path))
    assert table.text.tolist() == ["one", "two, quoted", "three"] and dropped == {"malformed_row": 1}
    assert table.input_file.tolist() == [str(tmp_path / "a.csv")] * 2 + [str(tmp_path / "b.jsonl")]
    with pytest.raises(DataError) as caught:
        readers.read_table(str(tmp_path / "none.csv"))
    assert str(caught.value).startswith(f"Data file not found: {tmp_path / 'none.csv'}. "
                                        f"Pass --data with a CSV")


def test_an_empty_folder_has_no_data(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "labels.json").write_text("{}")
    with pytest.raises(DataError) as caught:
        chunks(tmp_path)
    assert str(caught.value) == f"No data files (CSV, JSON Lines or Parquet) found in {tmp_path}."


def test_rows_come_in_chunks_numbered_from_one_in_their_file(tmp_path):
    (tmp_path / "t.csv").write_text("text\n" + "".join(f"t{i}\n" for i in range(1, 8)))
    read = chunks(tmp_path / "t.csv", rows=3)
    assert [f.index.tolist() for _, f, _ in read] == [[1, 2, 3], [4, 5, 6], [7]]
    assert [f.text.tolist() for _, f, _ in read][2] == ["t7"] and {o for o, _, _ in read} == {str(tmp_path
                                                                                                  / "t.csv")}
    whole = chunks(tmp_path / "t.csv")
    assert len(whole) == 1 and len(whole[0][1]) == 7


def test_every_cell_becomes_a_string_and_a_null_an_empty_one(tmp_path):
    frame = pd.DataFrame({"text": ["a", None, "c"], "label": [1.0, None, 3.0], "score": [0.5, 1.5, None],
                          "raw": [b"x", b"\xff", None]})
    frame.to_parquet(tmp_path / "t.parquet")
    (_, read, _), = chunks(tmp_path / "t.parquet")
    assert read.to_dict("list") == {"text": ["a", "", "c"], "label": ["1", "", "3"],
                                    "score": ["0.5", "1.5", ""],
                                    "raw": ["x", "\ufffd", ""]}
    assert read.index.tolist() == [1, 2, 3]


def test_parquet_comes_in_chunks_numbered_through_the_file(tmp_path):
    pd.DataFrame({"text": [f"t{i}" for i in range(5)]}).to_parquet(tmp_path / "t.parquet")
    assert [f.index.tolist() for _, f, _ in chunks(tmp_path / "t.parquet", rows=2)] == [[1, 2], [3, 4], [5]]


@pytest.mark.parametrize("name, fmt", [("a.csv", "csv"), ("a.CSV.gz", "csv"), ("a.jsonl", "jsonl"),
                                       ("a.ndjson", "jsonl"), ("a.json", "jsonl"), ("a.parquet", "parquet")])
def test_the_format_follows_the_name(name, fmt):
    assert readers._format_of(name, "auto") == fmt and readers._format_of(name, "csv") == "csv"


def test_a_name_that_says_no_format_is_refused_with_what_to_do():
    with pytest.raises(DataError) as caught:
        readers._format_of("s3://b/data.txt", "auto")
    assert str(caught.value) == ("Can't tell the format of s3://b/data.txt: name it .csv, .jsonl or .parquet "
                                 "(optionally .gz), or set data.format in the config.")


def test_gzip_and_a_byte_order_mark_read_as_plain_text(tmp_path):
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress("\ufefftext,label\nhello,😂\n".encode()))
    (_, frame, _), = chunks(tmp_path / "t.csv.gz")
    assert list(frame.columns) == ["text",
                                   "label"] and frame.to_dict("list") == {"text": ["hello"], "label": ["😂"]}


def test_empty_files_give_no_rows_but_keep_their_columns(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("text,label\n")
    (tmp_path / "blank.jsonl").write_text("\n\n")
    pd.DataFrame({"text": pd.Series([], dtype=str)}).to_parquet(tmp_path / "none.parquet")
    assert [(len(f), list(f.columns), bad) for _, f, bad in chunks(tmp_path / "empty.csv")] == [(0, [], 0)]
    assert [(len(f), list(f.columns)) for _, f, _ in chunks(tmp_path
                                                            / "header.csv")] == [(0, ["text", "label"])]
    assert [(len(f), list(f.columns)) for _, f, _ in chunks(tmp_path / "blank.jsonl")] == [(0, [])]
    assert [(len(f), list(f.columns)) for _, f, _ in chunks(tmp_path / "none.parquet")] == [(0, ["text"])]


def test_a_csv_header_that_repeats_a_name_is_numbered_and_short_rows_are_padded(tmp_path):
    (tmp_path / "t.csv").write_text("text,x,x\na\nb,1,2\n")
    (_, frame, bad), = chunks(tmp_path / "t.csv")
    assert list(frame.columns) == ["text", "x",
                                   "x.1"] and frame.values.tolist() == [["a", "", ""], ["b", "1", "2"]]
    assert bad == 0 and readers._csv_header(str(tmp_path / "t.csv"), 0) == ["text", "x", "x"]


def test_json_lines_keep_scalars_as_written_and_nested_values_as_json(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"text": "a", "n": 2, "tags": ["x"], "meta": {"k": 1}, "none": null}\n'
                                      '[1, 2]\n"just a string"\n{"text": "b"}\n')
    (_, frame, bad), = chunks(tmp_path / "t.jsonl")
    assert bad == 2 and frame.index.tolist() == [1, 4]
    assert frame.loc[1].to_dict() == {"text": "a", "n": "2", "tags": '["x"]', "meta": '{"k": 1}', "none": ""}


def test_an_unreadable_file_is_named_with_its_format(tmp_path):
    (tmp_path / "t.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError) as caught:
        chunks(tmp_path / "t.parquet")
    assert str(caught.value).startswith(f"Can't read {tmp_path / 't.parquet'} as parquet: ")
    assert str(caught.value).endswith(". Check the file, or set data.format.")
    with pytest.raises(DataError, match="^Unknown data.format 'xml': use auto, csv, jsonl or parquet."):
        chunks(tmp_path / "t.parquet", fmt="xml")


def test_columns_are_found_by_name_in_any_case_or_as_configured():
    frame = pd.DataFrame(columns=[" Tweet ", "EMOJI", "other"])
    assert readers.columns(frame, None, None, "f.csv") == (" Tweet ", "EMOJI")
    assert readers.columns(pd.DataFrame(columns=["body"]), None, None, "f.csv") == ("body", None)
    assert readers.columns(frame, "other", "EMOJI", "f.csv") == ("other", "EMOJI")
    with pytest.raises(DataError) as caught:
        readers.columns(frame, "missing", None, "f.csv")
    assert str(caught.value) == ("f.csv has no column 'missing' (data.text_column); its columns are "
                                 "[' Tweet ', 'EMOJI', 'other'].")
    with pytest.raises(DataError) as caught:
        readers.columns(frame, None, "lbl", "f.csv")
    assert "(data.label_column)" in str(caught.value)
    with pytest.raises(DataError) as caught:
        readers.columns(pd.DataFrame(columns=["a", "b"]), None, None, "f.csv")
    assert str(caught.value) == ("f.csv has no text column (looked for text, tweet, content, "
                                 "body; found ['a', 'b']). "
                                 "Rename it, or set data.text_column in the config.")


def test_a_label_map_is_read_beside_the_data_or_as_configured(tmp_path):
    (tmp_path / "t.csv").write_text("text\nx\n")
    assert readers.load_label_map(None, str(tmp_path / "t.csv")) is None
    (tmp_path / "labels.json").write_text('{" 0 ": "😂", "1": "❤"}')
    assert readers.load_label_map(None, str(tmp_path / "t.csv")) == {"0": "😂", "1": normalize_emoji("❤")}
    (tmp_path / "mine.json").write_text('{"7": "🔥"}')
    assert readers.load_label_map(str(tmp_path / "mine.json"), str(tmp_path / "t.csv")) == {"7": "🔥"}
    with pytest.raises(DataError) as caught:
        readers.load_label_map(str(tmp_path / "gone.json"), str(tmp_path / "t.csv"))
    assert (str(caught.value) == f"Label map {tmp_path / 'gone.json'} not found. Fix "
                                 f"data.labels in the config.")
    (tmp_path / "labels.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=f"^Label map {tmp_path / 'labels.json'} is not a "
                                        f"JSON object of label id"):
        readers.load_label_map(None, str(tmp_path / "t.csv"))


def test_the_table_scoring_reads_keeps_each_rows_origin_and_labels_through_the_map(tmp_path):
    (tmp_path / "t.csv").write_text('tweet,label\nfirst,0\na,b,c\nsecond, 1 \nthird,\nfourth,🔥\n')
    (tmp_path / "labels.json").write_text('{"0": "😂", "1": "😭"}')
    table, dropped = readers.load_labeled_texts(str(tmp_path / "t.csv"))
    assert dropped == {"malformed_row": 1} and list(table.columns) == ["row", "text", "emoji"]
    assert {**table.to_dict("list"), "emoji": nulls_as_none(table.emoji)} == {
        "row": [1, 3, 4, 5], "text": ["first", "second", "third", "fourth"],
        "emoji": ["😂", "😭", None, "🔥"]}
    unlabeled = readers.labeled_texts(pd.DataFrame({"text": ["x", None]}), "f", None)
    assert unlabeled.to_dict("list") == {"row": [1, 2], "text": ["x", ""]}
    several = pd.DataFrame({"input_file": ["a", "b"], "text": ["x", "y"], "emoji": ["❤", ""]},
                           index=pd.Index([4, 9], name="row"))
    table = readers.labeled_texts(several, "f", None)
    assert {**table.to_dict("list"), "emoji": nulls_as_none(table.emoji)} == {
        "input_file": ["a", "b"], "row": [4, 9], "text": ["x", "y"], "emoji": [normalize_emoji("❤"), None]}
