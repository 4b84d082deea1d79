"""Score a frame of texts in batches into the table `emoji-reco predict --input` writes, and write that
table."""
import numpy as np
import pandas as pd

EMPTY = "empty text after cleaning"


def score_frame(predictor, frame: pd.DataFrame, top_k: int, batch_size: int, progress=None):
    """(table, logits of the scorable rows, their row positions). The table has one row per input row, in
    order: input_file (when there are several) and row (its number in the input) when the frame has them,
    text, label (when the frame has one), error, emoji_1, probability_1, …; a row with nothing left to score
    after cleaning keeps its place, with its reason in `error`."""
    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.data.readers import ORIGIN
    from emoji_reco.serving.payloads import top_k as top

    out = {c: frame[c].tolist() for c in ORIGIN if c in frame}
    out.update({"text": frame.text.tolist(), "error": [""] * len(frame)})
    for j in range(top_k):
        out[f"emoji_{j + 1}"], out[f"probability_{j + 1}"] = [""] * len(frame), [None] * len(frame)
    scorable = [i for i, t in enumerate(frame.text) if clean_text(t)]
    for i in set(range(len(frame))) - set(scorable):
        out["error"][i] = EMPTY
    logits = np.zeros((len(scorable), len(predictor.emojis)), dtype=np.float32)
    for start in range(0, len(scorable), batch_size):
        rows = scorable[start : start + batch_size]
        logits[start : start + len(rows)] = predictor.logits([frame.text.iloc[i] for i in rows])
        for i, answer in zip(rows, top(logits[start : start + len(rows)].tolist(), predictor.emojis, top_k)):
            for j, a in enumerate(answer):
                out[f"emoji_{j + 1}"][i], out[f"probability_{j + 1}"][i] = a["emoji"], a["probability"]
        if progress:
            progress(len(rows))
    table = pd.DataFrame(out)
    if "emoji" in frame:
        table.insert(table.columns.get_loc("text") + 1, "label", frame.emoji.tolist())
    return table, logits, scorable


def is_jsonl(path: str) -> bool:
    return path.endswith((".jsonl", ".json"))


def write_table(table: pd.DataFrame, path_or_buffer, jsonl: bool) -> None:
    """CSV, or JSON Lines (one object per row, emojis as themselves)."""
    if jsonl:
        table.to_json(path_or_buffer, orient="records", lines=True, force_ascii=False)
    else:
        table.to_csv(path_or_buffer, index=False)
