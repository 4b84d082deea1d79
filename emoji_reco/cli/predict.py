"""`emoji-reco predict`: the top emojis for texts, or for every row of a file, with the deployed model or a
bundle."""
import json
import sys
import tempfile
from pathlib import Path

from emoji_reco.errors import EmojiRecoError, ModelError
from emoji_reco.model.runtimes import RUNTIMES

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
    pr.add_argument("--runtime", choices=RUNTIMES, default="savedmodel",
                    help="the model's form: savedmodel (float32, default), int8 (LiteRT; the bundle must "
                         "hold it), auto (int8 if the bundle holds a usable one)")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.add_argument("--explain", action="store_true",
                    help="also show the words behind each emoji (the n-gram half's, exactly; see README)")
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
    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.model.bundle import Predictor
    from emoji_reco.serving.payloads import top_k

    if not args.texts and not args.input:
        raise EmojiRecoError("Give texts to score, or --input FILE.")
    empty = [str(i + 1) for i, t in enumerate(args.texts) if not clean_text(t)]
    if empty:
        raise EmojiRecoError(f"Text {', '.join(empty)} is empty after cleaning (spaces, control "
                             f"characters, mentions "
                             "and links are removed): give text to score.")
    with tempfile.TemporaryDirectory(prefix="emoji-reco-model-") as tmp:
        predictor = Predictor(_model_dir(args, tmp), runtime=args.runtime)
        if args.input:
            return score_file(predictor, args)
        answers = top_k(predictor.logits(args.texts).tolist(), predictor.emojis, args.top_k)
        explainer = predictor.explainer if args.explain else None
        if args.explain and explainer is None:
            raise ModelError("This model has no n-gram half, whose words --explain shows "
                             "(model.ngram.enabled).")
        why = [explainer.explain(t, [a["emoji"] for a in answer]) if explainer else None
               for t, answer in zip(args.texts, answers)]
    if args.json:
        print(json.dumps([{"text": t, "emojis": a, **({"explanation": w} if w else {})}
                          for t, a, w in zip(args.texts, answers, why)], ensure_ascii=False))
    else:
        for text, answer, explanation in zip(args.texts, answers, why):
            print(f"{text}\n  {_format(answer)}")
            for part in (explanation or {}).get("emojis", []):
                print(f"    {_why(part)}")
    return 0


def _why(part: dict) -> str:
    """🔥 because of: +game 1.17  +tonight 0.32  -so 0.23"""
    from emoji_reco.data.text import display_emoji

    words = "  ".join(f"{'+' if w['weight'] > 0 else '-'}{w['word']} "
                      f"{abs(w['weight']):.2f}" for w in part["words"])
    return f"{display_emoji(part['emoji'])} {words or '(no word moved it)'}"


def score_file(predictor, args) -> int:
    """Score every row of a file in batches, in order; rows that can't be scored say why; labeled rows are
    scored as the evaluate step scores a test split."""
    import numpy as np
    from tqdm import tqdm

    from emoji_reco.data.readers import load_labeled_texts
    from emoji_reco.model import evaluation
    from emoji_reco.model.ensemble import softmax
    from emoji_reco.scoring import frames

    frame, dropped = load_labeled_texts(args.input)
    if dropped["malformed_row"]:
        print(f"skipped {dropped['malformed_row']} malformed rows of {args.input} (a CSV row "
              f"with extra fields or an "
              "unterminated quote, or a JSON line that is not an object)", file=sys.stderr)
    with tqdm(total=len(frame), unit="row", desc="scoring", file=sys.stderr) as bar:
        result, logits, scorable = frames.score_frame(predictor, frame, args.top_k, args.batch_size,
                                                      bar.update)
    frames.write_table(result, args.output or sys.stdout, frames.is_jsonl(args.output) if args.output
                       else args.json)
    print(f"{'wrote' if args.output else 'printed'} {len(result)} "
          f"rows{f' to {args.output}' if args.output else ''}: "
          f"{len(scorable)} scored, {len(result) - len(scorable)} not scored ({frames.EMPTY}, "
          "their reason in `error`)", file=sys.stderr)
    if "emoji" in frame:
        labels = [frame.emoji[i] for i in scorable]
        judged = [k for k, label in enumerate(labels) if isinstance(label, str)]
        if judged:
            # an emoji the model doesn't know is a miss
            index = {e: c for c, e in enumerate(predictor.emojis)}
            scores = evaluation.score(softmax(logits[judged]),
                                      np.array([index.get(labels[k], -1) for k in judged]),
                                      predictor.emojis)
            print(f"top-1 accuracy {scores['top1']:.4f}, top-3 accuracy "
                  f"{scores['top3']:.4f} on {len(judged)} "
                  "labeled rows", file=sys.stdout if args.output else sys.stderr)  # stdout may hold the table
    return 0
