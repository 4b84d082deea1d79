"""`emoji-reco predict`: the top emojis for texts, or for every row of a file, with the deployed model or a bundle."""
import json
import sys
import tempfile
from pathlib import Path

from emoji_reco.errors import EmojiRecoError, ModelError

DEFAULT_ENDPOINT = "emoji-reco"


def add(sub) -> None:
    pr = sub.add_parser("predict", help="top emojis for texts, or for every row of a file")
    pr.add_argument("texts", nargs="*", help="texts to score")
    pr.add_argument("--input", help="CSV, JSON Lines or Parquet file (local or s3://) with a text column")
    pr.add_argument("--output", help="where to write scores (.csv or .jsonl); default stdout")
    pr.add_argument("--top-k", type=int, default=3)
    pr.add_argument("--batch-size", type=int, default=256)
    pr.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="local endpoint whose current model to use")
    pr.add_argument("--model", help="a model bundle folder (or s3:// prefix) instead of the endpoint's")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.set_defaults(func=predict)


def _model_dir(args, tmp: str) -> Path:
    from emoji_reco import storage
    from emoji_reco.serving.local_endpoint import LocalEndpoint

    if args.model:
        return Path(storage.get_dir(args.model, f"{tmp}/model"))
    current = LocalEndpoint(args.endpoint).current_dir()
    if current is None:
        raise ModelError(f"No model is deployed to endpoint {args.endpoint!r} yet. Run "
                         "`python flows/emoji_flow.py run` first, or pass --model with a bundle folder.")
    return current


def _format(answer: list[dict]) -> str:
    from emoji_reco.data.text import display_emoji

    return "  ".join(f"{display_emoji(a['emoji'])} {a['probability']:.3f}" for a in answer)


def predict(args) -> int:
    from emoji_reco.model.bundle import Predictor
    from emoji_reco.serving.payloads import top_k

    if not args.texts and not args.input:
        raise EmojiRecoError("Give texts to score, or --input FILE.")
    with tempfile.TemporaryDirectory(prefix="emoji-reco-model-") as tmp:
        predictor = Predictor(_model_dir(args, tmp))
        if args.input:
            return score_file(predictor, args)
        answers = top_k(predictor.logits(args.texts).tolist(), predictor.emojis, args.top_k)
    if args.json:
        print(json.dumps([{"text": t, "emojis": a} for t, a in zip(args.texts, answers)], ensure_ascii=False))
    else:
        for text, answer in zip(args.texts, answers):
            print(f"{text}\n  {_format(answer)}")
    return 0


def score_file(predictor, args) -> int:
    """Score every row of a file in batches, in order; rows that can't be scored say why; labeled rows are scored
    as the evaluate step scores a test split."""
    import numpy as np
    import pandas as pd
    from tqdm import tqdm

    from emoji_reco.data.readers import load_labeled_texts
    from emoji_reco.data.text import clean_text
    from emoji_reco.model import evaluation
    from emoji_reco.model.ensemble import softmax
    from emoji_reco.serving.payloads import top_k

    frame = load_labeled_texts(args.input)
    out = {"text": frame.text.tolist(), "error": [""] * len(frame)}
    for j in range(args.top_k):
        out[f"emoji_{j + 1}"], out[f"probability_{j + 1}"] = [""] * len(frame), [None] * len(frame)
    scorable = [i for i, t in enumerate(frame.text) if clean_text(t)]
    for i in set(range(len(frame))) - set(scorable):
        out["error"][i] = "empty text after cleaning"
    logits = np.zeros((len(scorable), len(predictor.emojis)), dtype=np.float32)
    with tqdm(total=len(scorable), unit="row", desc="scoring", file=sys.stderr) as bar:
        for start in range(0, len(scorable), args.batch_size):
            rows = scorable[start : start + args.batch_size]
            logits[start : start + len(rows)] = predictor.logits([frame.text[i] for i in rows])
            for i, answer in zip(rows, top_k(logits[start : start + len(rows)].tolist(), predictor.emojis, args.top_k)):
                for j, a in enumerate(answer):
                    out[f"emoji_{j + 1}"][i], out[f"probability_{j + 1}"][i] = a["emoji"], a["probability"]
            bar.update(len(rows))
    result = pd.DataFrame(out)
    if "emoji" in frame:
        result.insert(1, "label", frame.emoji)
    if args.output:
        (result.to_json(args.output, orient="records", lines=True, force_ascii=False)
         if args.output.endswith((".jsonl", ".json")) else result.to_csv(args.output, index=False))
        print(f"wrote {len(result)} rows to {args.output} ({len(result) - len(scorable)} not scorable)", file=sys.stderr)
    else:
        result.to_csv(sys.stdout, index=False)
    if "emoji" in frame:
        labels = [frame.emoji[i] for i in scorable]
        judged = [k for k, label in enumerate(labels) if isinstance(label, str)]
        if judged:
            index = {e: c for c, e in enumerate(predictor.emojis)}  # an emoji the model doesn't know is a miss
            scores = evaluation.score(softmax(logits[judged]), np.array([index.get(labels[k], -1) for k in judged]),
                                      predictor.emojis)
            print(f"top-1 accuracy {scores['top1']:.4f}, top-3 accuracy {scores['top3']:.4f} on {len(judged)} "
                  "labeled rows")
    return 0
