"""ScoreFlow's work: the model pinned into the run, the input split into shards in the run's datastore, one
shard scored into the output folder (or left as an earlier run with the same rows and model scored it), the
manifest."""
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time

from emoji_reco import storage
from emoji_reco.errors import ModelError
from emoji_reco.settings.sections import ScoreSettings

RUN = re.compile(r"[A-Za-z_]\w*/[\w.-]+")  # a run pathspec: EmojiFlow/1234, MultiNodeEmojiFlow/argo-…


def pin_model(model: str, target, run_root: str) -> str:
    """Copy the model to score with into the run (see `local_model`): the copy is what every shard reads,
    wherever it runs."""
    with tempfile.TemporaryDirectory(prefix="emoji-reco-model-") as tmp:
        uri = storage.join(run_root, "model")
        storage.put_dir(local_model(model, target, tmp), uri)
    return uri


def local_model(model: str, target, tmp: str) -> str:
    """The model to score with, as a folder under `tmp`: `model` is a bundle folder or s3:// prefix, a
    training run (EmojiFlow/1234), or '' for the champion `target` serves."""
    if model:
        return str(storage.get_dir(_bundle_of(model), os.path.join(tmp, "model")))
    local = target.champion(tmp)
    if local is None:
        raise ModelError("No model is deployed to the endpoint yet: run `python flows/emoji_flow.py run` "
                         "first, or pass --model with a bundle folder, an s3:// prefix or a run.")
    return str(local)


def _bundle_of(model: str) -> str:
    if storage.is_s3(model) or os.path.exists(model) or not RUN.fullmatch(model):
        return model
    from metaflow import Run
    from metaflow.exception import MetaflowNotFound

    try:
        bundle = Run(model).data.bundle_uri
    except (MetaflowNotFound, AttributeError, KeyError) as exc:
        raise ModelError(f"Run {model} not found, or it made no model bundle: {exc}") from exc
    if not bundle:
        raise ModelError(f"Run {model} made no model bundle.")
    return bundle


def split(source: str, shard_root: str, rows: int) -> list[dict]:
    """Read `source` (a file, a folder or an s3:// prefix) `rows` rows at a time, each chunk a shard file."""
    import pandas as pd

    from emoji_reco.data import readers

    label_map = readers.load_label_map(None, source)
    shards = []
    for origin, frame, malformed in readers.read_chunks(source, rows=rows):
        table = readers.labeled_texts(frame, origin, label_map)
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        uri = storage.join(shard_root, f"part-{len(shards):05d}.parquet")
        storage.put_bytes(buffer.getvalue(), uri)
        digest = hashlib.sha256(pd.util.hash_pandas_object(table, index=False).values.tobytes()).hexdigest()
        shards.append({"index": len(shards), "uri": uri, "source": origin, "rows": len(table),
                       "malformed_row": malformed, "digest": digest})
        print(f"shard {len(shards) - 1}: {len(table)} rows of {origin}", file=sys.stderr)
    return shards


def score_shard(shard: dict, model_uri: str, output: str, settings: ScoreSettings) -> dict:
    """Score one shard into `output`/part-NNNNN.csv (or .jsonl) and its record part-NNNNN.json, written last;
    a record from an earlier run with the same rows, model and settings means the shard is done already."""
    import pandas as pd
    from tqdm import tqdm

    from emoji_reco.model.bundle import Predictor
    from emoji_reco.scoring import frames

    name, suffix = f"part-{shard['index']:05d}", ".jsonl" if settings.format == "jsonl" else ".csv"
    model = storage.read_text(storage.join(model_uri, "metadata.json")) or ""
    fingerprint = hashlib.sha256(json.dumps([shard["digest"], hashlib.sha256(model.encode()).hexdigest(),
                                             settings.top_k, suffix]).encode()).hexdigest()
    record_uri = storage.join(output, f"{name}.json")
    earlier = json.loads(storage.read_text(record_uri) or "{}")
    if earlier.get("fingerprint") == fingerprint:
        print(f"{name}: scored by an earlier run ({earlier['output']}), kept", file=sys.stderr)
        return {**earlier, "reused": True}
    started = time.monotonic()
    table = pd.read_parquet(io.BytesIO(storage.read_bytes(shard["uri"])))
    with tempfile.TemporaryDirectory(prefix="emoji-reco-model-") as tmp:
        predictor = Predictor(storage.get_dir(model_uri, os.path.join(tmp, "model")))
        with tqdm(total=len(table), unit="row", desc=name, file=sys.stderr) as bar:
            result, _, scorable = frames.score_frame(predictor, table, settings.top_k, settings.batch_size,
                                                     bar.update)
    text = io.StringIO()
    frames.write_table(result, text, suffix == ".jsonl")
    storage.put_bytes(text.getvalue().encode("utf-8"), storage.join(output, name + suffix))
    record = {"shard": name, "output": storage.join(output, name + suffix), "source": shard["source"],
              "fingerprint": fingerprint, "rows_in": shard["rows"] + shard["malformed_row"],
              "rows_out": len(result),
              "scored": len(scorable), "not_scored": {frames.EMPTY: len(result) - len(scorable)},
              "dropped": {"malformed_row": shard["malformed_row"]},
              "seconds": round(time.monotonic() - started, 2)}
    storage.put_bytes(json.dumps(record, indent=1).encode(), record_uri)
    return {**record, "reused": False}


def manifest(source: str, output: str, model_uri: str, records: list[dict]) -> dict:
    """The whole job: rows in, rows out, rows not scored and dropped by reason, and every shard; written to
    `output`/manifest.json."""
    records = sorted(records, key=lambda r: r["shard"])

    def total(key):
        reasons = {}
        for r in records:
            for reason, n in r[key].items():
                reasons[reason] = reasons.get(reason, 0) + n
        return reasons

    out = {"input": source, "model": model_uri, "shards": len(records),
           "reused_shards": sum(r["reused"] for r in records),
           "rows_in": sum(r["rows_in"] for r in records), "rows_out": sum(r["rows_out"] for r in records),
           "scored": sum(r["scored"] for r in records), "not_scored": total("not_scored"),
           "dropped": total("dropped"),
           "outputs": [r["output"] for r in records]}
    storage.put_bytes(json.dumps(out, indent=1, ensure_ascii=False).encode(),
                      storage.join(output, "manifest.json"))
    return out
