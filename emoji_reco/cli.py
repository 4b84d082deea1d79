"""The `emoji-reco` command: predict with the deployed model, look after the endpoint and registry."""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from emoji_reco.errors import EmojiRecoError, ModelError

DEFAULT_ENDPOINT = "emoji-reco"


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

    if not args.texts and not args.input:
        raise EmojiRecoError("Give texts to score, or --input FILE.")
    with tempfile.TemporaryDirectory(prefix="emoji-reco-model-") as tmp:
        predictor = Predictor(_model_dir(args, tmp))
        if args.input:
            return score_file(predictor, args)
        answers = predictor.top_k(args.texts, args.top_k)
    if args.json:
        print(json.dumps([{"text": t, "emojis": a} for t, a in zip(args.texts, answers)], ensure_ascii=False))
    else:
        for text, answer in zip(args.texts, answers):
            print(f"{text}\n  {_format(answer)}")
    return 0


def score_file(predictor, args) -> int:
    """Score every row of a file in batches, in order; rows that can't be scored say why."""
    import pandas as pd
    from tqdm import tqdm

    from emoji_reco.data.dataset import load_labeled_texts
    from emoji_reco.data.text import clean_text

    frame = load_labeled_texts(args.input)
    out = {"text": frame.text.tolist(), "error": [""] * len(frame)}
    for j in range(args.top_k):
        out[f"emoji_{j + 1}"], out[f"probability_{j + 1}"] = [""] * len(frame), [None] * len(frame)
    scorable = [i for i, t in enumerate(frame.text) if clean_text(t)]
    for i in set(range(len(frame))) - set(scorable):
        out["error"][i] = "empty text after cleaning"
    hits1 = hits3 = judged = 0
    with tqdm(total=len(scorable), unit="row", desc="scoring", file=sys.stderr) as bar:
        for start in range(0, len(scorable), args.batch_size):
            rows = scorable[start : start + args.batch_size]
            for i, answer in zip(rows, predictor.top_k([frame.text[i] for i in rows], max(args.top_k, 3))):
                for j, a in enumerate(answer[: args.top_k]):
                    out[f"emoji_{j + 1}"][i], out[f"probability_{j + 1}"][i] = a["emoji"], a["probability"]
                if "emoji" in frame and isinstance(frame.emoji[i], str):
                    ranked = [a["emoji"] for a in answer]
                    judged += 1
                    hits1 += ranked[0] == frame.emoji[i]
                    hits3 += frame.emoji[i] in ranked[:3]
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
    if judged:
        print(f"top-1 accuracy {hits1 / judged:.4f}, top-3 accuracy {hits3 / judged:.4f} on {judged} labeled rows")
    return 0


def endpoint_cmd(args) -> int:
    from emoji_reco.serving.local_endpoint import LocalEndpoint

    endpoint = LocalEndpoint(args.endpoint)
    if args.action == "rollback":
        print(f"endpoint {endpoint.name} now serves {endpoint.rollback()}")
    else:
        print(json.dumps({"endpoint": endpoint.name, "path": str(endpoint.root), "current": endpoint.current_version(),
                          "versions": endpoint.versions()}, indent=1))
    return 0


def models_cmd(args) -> int:
    if args.registry == "sagemaker":
        from emoji_reco.aws import model_registry as sm

        if args.action == "list":
            for v in sm.versions(args.group):
                print(f"{v['package_version']!s:>4} {v['status']:22} {v['created_at']}  top-1 {v.get('top1', '?'):7} "
                      f"{v.get('run', '')}")
            return 0
        if not args.model:
            raise EmojiRecoError(f"models {args.action} needs the package version or ARN.")
        status = sm.APPROVED if args.action == "approve" else sm.REJECTED
        print(json.dumps(sm.set_status(args.model, status, args.group, args.note)))
        return 0
    from metaflow import Run
    from metaflow.exception import MetaflowNotFound

    from emoji_reco import registry

    if args.action == "list":
        try:
            models = registry.models(args.flow)
        except MetaflowNotFound:
            print(f"No {args.flow} runs here yet (Metaflow looks in the .metaflow folder of this directory or above "
                  "it, or in your configured datastore). Run `python flows/emoji_flow.py run` first.")
            return 0
        for model in models:
            print(f"{model['run']:40} {','.join(model['state']):20} {model['created_at']}")
        if not models:
            print(f"No registered models yet: no {args.flow} run has reached its register step.")
        return 0
    if not args.model:
        raise EmojiRecoError(f"models {args.action} needs the run, e.g. EmojiFlow/1234.")
    print(registry.mark(args.model, {"passed": args.action == "approve"}))
    if args.deploy and args.action == "approve":
        settings = Run(args.model, _namespace_check=False)["start"].task.data.settings
        deployment = registry.deploy_approved(settings, args.model)
        print(f"endpoint {deployment['endpoint']} now serves {deployment['version']}" if deployment["deployed"]
              else f"not deployed: {deployment['reason']}")
    return 0


def cards_cmd(args) -> int:
    from emoji_reco.card_images import snapshot_run

    for png in snapshot_run(args.run, Path(args.output)):
        print(png)
    return 0


def serve_cmd(args) -> int:
    from emoji_reco.serving.server import ServeSettings, serve

    overrides = {k: v for k, v in vars(args).items() if k in ServeSettings.__dataclass_fields__ and v is not None}
    serve(ServeSettings(**overrides))
    return 0


def demo_data_cmd(args) -> int:
    from emoji_reco.data.demo import EMOJIS, demo_raw_tweets, demo_tweets

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.raw:
        demo_raw_tweets(args.rows, args.seed).to_csv(out / "raw_tweets.csv", index=False)
    else:
        frame = demo_tweets(args.rows, args.seed)
        frame.assign(LABEL=frame.LABEL.map(EMOJIS.index)).to_csv(out / "tweets.csv", index=False)
        (out / "labels.json").write_text(json.dumps(dict(enumerate(EMOJIS)), ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote demo data to {out}")
    return 0


def aws_cmd(args) -> int:
    from emoji_reco.aws import event_rules

    if args.action == "lambda-zip":
        from emoji_reco.aws.http_front import build_zip

        print(build_zip(args.output))
        return 0
    verb, kind = args.action.split("-")
    name = args.rule or f"emoji-reco-{kind}"
    if verb == "unwire":
        event_rules.unwire(name)
        print(f"removed rule {name} and its role")
        return 0
    missing = [f"--{n.replace('_', '-')}" for n in ("bucket", "state_machine")[kind == "deploy":] if not getattr(args, n)]
    if missing:
        raise EmojiRecoError(f"{args.action} needs {' and '.join(missing)}.")
    if kind == "retrain":
        event_rules.enable_s3_events(args.bucket)
        rule = event_rules.retrain(args.bucket, args.prefix)
    else:
        rule = event_rules.deploy_on_approval(args.group)
    print(json.dumps({**event_rules.wire(rule, args.state_machine, name), "pattern": rule.pattern}, indent=1))
    return 0


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in one line, with where to look."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="emoji-reco", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

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

    ep = sub.add_parser("endpoint", help="show the local endpoint, or roll it back one version")
    ep.add_argument("action", choices=["status", "rollback"])
    ep.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    ep.set_defaults(func=endpoint_cmd)

    mo = sub.add_parser("models", help="registered models: list, approve or reject (run tags, or SageMaker's registry)")
    mo.add_argument("action", choices=["list", "approve", "reject"])
    mo.add_argument("model", nargs="?", help="run (EmojiFlow/1234), or SageMaker package version or ARN")
    mo.add_argument("--registry", choices=["local", "sagemaker"], default="local",
                    help="local: Metaflow run tags; sagemaker: the SageMaker Model Registry")
    mo.add_argument("--group", default="emoji-reco", help="SageMaker model package group")
    mo.add_argument("--note", default="", help="approval note (SageMaker)")
    mo.add_argument("--flow", default="EmojiFlow")
    mo.add_argument("--deploy", action="store_true",
                    help="approve: also publish the run's model to its local endpoint, after a smoke prediction")
    mo.set_defaults(func=models_cmd)

    se = sub.add_parser("serve", help="HTTP inference server (SageMaker contract: /ping, /invocations) and web page")
    se.add_argument("--model", help="bundle folder, model.tar.gz, or s3://; default: the local endpoint's current model")
    se.add_argument("--endpoint", help=f"local endpoint to follow (default {DEFAULT_ENDPOINT})")
    se.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 to accept other machines)")
    se.add_argument("--port", type=int, help="default $SAGEMAKER_BIND_TO_PORT or 8080")
    se.add_argument("--workers", type=int, help="server processes (default $SAGEMAKER_MODEL_SERVER_WORKERS or 1)")
    se.add_argument("--max-batch", dest="max_batch", type=int, help="texts per model call (default 64; 1: no batching)")
    se.add_argument("--model-threads", dest="model_threads", type=int,
                    help="model calls at once per worker (default: one per CPU core)")
    se.add_argument("--max-wait-ms", dest="max_wait_ms", type=float, help="wait for more requests when idle (default 0)")
    se.add_argument("--max-queued-texts", dest="max_queued_texts", type=int,
                    help="texts waiting for the model before new requests get 503 (default 128 per worker)")
    se.add_argument("--max-open-requests", dest="max_open_requests", type=int,
                    help="requests in progress before new ones get 503 (default 256 per worker)")
    se.add_argument("--deadline-ms", dest="deadline_ms", type=float,
                    help="a request not scored by then gets 503 and is dropped (default 2000)")
    se.add_argument("--allowed-hosts", dest="allowed_hosts", type=_names,
                    help="Host names to answer, comma-separated; '*' for any (default: loopback names when bound "
                         "to loopback, else any). Set it behind a proxy.")
    se.add_argument("--allowed-origins", dest="allowed_origins", type=_names,
                    help="web origins (https://app.example.com) whose pages may call this server, comma-separated; "
                         "'*' for any (default: same origin only)")
    se.set_defaults(func=serve_cmd)

    ca = sub.add_parser("cards", help="PNG snapshots of a run's cards (needs Chromium and the [browser] extra)")
    ca.add_argument("action", choices=["snapshot"])
    ca.add_argument("run", help="run pathspec, e.g. EmojiFlow/1234")
    ca.add_argument("--output", default="cards", help="folder for the PNGs")
    ca.set_defaults(func=cards_cmd)

    aw = sub.add_parser("aws", help="EventBridge rules: retrain when new data lands in S3 (→ EmojiFlow's state "
                                    "machine), deploy when a model package is approved (→ DeployFlow's); pack the "
                                    "HTTP front's Lambda")
    aw.add_argument("action", choices=["wire-retrain", "unwire-retrain", "wire-deploy", "unwire-deploy", "lambda-zip"])
    aw.add_argument("--bucket", help="wire-retrain: bucket that receives new tweet files")
    aw.add_argument("--prefix", default="", help="wire-retrain: key prefix to watch, e.g. incoming/")
    aw.add_argument("--group", default="emoji-reco", help="wire-deploy: the model package group whose approvals deploy")
    aw.add_argument("--state-machine", dest="state_machine",
                    help="name or ARN, e.g. emoji_reco.prod.EmojiFlow (retrain) or emoji_reco.prod.DeployFlow (deploy)")
    aw.add_argument("--rule", help="name of the EventBridge rule and of its IAM role (default emoji-reco-retrain or "
                                   "emoji-reco-deploy)")
    aw.add_argument("--output", default="emoji-reco-http-front.zip", help="lambda-zip: where to write the package")
    aw.set_defaults(func=aws_cmd)

    dd = sub.add_parser("demo-data", help="write the demo data set to a folder")
    dd.add_argument("--output", required=True)
    dd.add_argument("--rows", type=int, default=3000)
    dd.add_argument("--seed", type=int, default=7)
    dd.add_argument("--raw", action="store_true", help="raw tweets with the emoji inside the text")
    dd.set_defaults(func=demo_data_cmd)
    return p


def _user_error(exc: BaseException) -> str | None:
    """One line for an error the user can act on, or None for a bug."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from metaflow.exception import MetaflowNotFound

    if isinstance(exc, EmojiRecoError):
        return str(exc)
    if isinstance(exc, MetaflowNotFound):
        return f"{exc}. Check the run (e.g. EmojiFlow/1234) and that you are in the folder (or datastore) where it ran."
    if isinstance(exc, NoCredentialsError):
        return "No AWS credentials: run `aws configure` or set AWS_PROFILE."
    if isinstance(exc, (BotoCoreError, ClientError)):
        return f"AWS refused: {exc}"
    if isinstance(exc, FileNotFoundError):
        return f"Not found: {exc.filename or exc}."
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename or exc}."
    return None


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("emoji-reco: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message, status = _user_error(exc), 2
        if message is None:
            if os.environ.get("EMOJI_RECO_DEBUG"):
                raise
            message = f"unexpected error ({type(exc).__name__}: {exc}); set EMOJI_RECO_DEBUG=1 for the traceback"
            status = 1
        print(f"emoji-reco: {message}".replace("\n", " "), file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
