"""`emoji-reco aws`: the EventBridge rules that retrain on new data and deploy on approval, the HTTP front's
Lambda package, and scoring an S3 prefix with SageMaker Batch Transform."""
import json

from emoji_reco.errors import EmojiRecoError


def add(sub) -> None:
    aw = sub.add_parser("aws", help="EventBridge rules: retrain when new data lands in S3 "
                                    "(→ EmojiFlow's state "
                                    "machine), deploy when a model package is approved (→ "
                                    "DeployFlow's); pack the "
                                    "HTTP front's Lambda; score an S3 prefix with Batch Transform")
    aw.add_argument("action", choices=["wire-retrain", "unwire-retrain", "wire-deploy", "unwire-deploy",
                                       "lambda-zip",
                                       "batch-score"])
    aw.add_argument("--bucket", help="wire-retrain: bucket that receives new tweet files")
    aw.add_argument("--prefix", default="", help="wire-retrain: key prefix to watch, e.g. incoming/")
    aw.add_argument("--group", default="emoji-reco",
                    help="wire-deploy: the model package group whose approvals deploy")
    aw.add_argument("--state-machine", dest="state_machine",
                    help="name or ARN, e.g. emoji_reco.prod.EmojiFlow (retrain) or "
                         "emoji_reco.prod.DeployFlow (deploy)")
    aw.add_argument("--rule", help="name of the EventBridge rule and of its IAM role (default "
                                   "emoji-reco-retrain or "
                                   "emoji-reco-deploy)")
    aw.add_argument("--output", help="lambda-zip: where to write the package (default "
                                     "emoji-reco-http-front.zip); "
                                     "batch-score: the s3:// prefix for the scores")
    aw.add_argument("--input", help="batch-score: the s3:// file or prefix to score (CSV or JSON "
                                    "Lines, one text a line)")
    aw.add_argument("--model", default="", help="batch-score: a bundle folder or s3:// prefix, or a run "
                                                "(EmojiFlow/1234); default: the deploy target's champion")
    aw.add_argument("--config", help="batch-score: a config file (default config/base.json's settings)")
    aw.add_argument("--no-wait", dest="wait", action="store_false", help="batch-score: "
                                                                         "start the job and return")
    aw.set_defaults(func=aws_cmd)


def aws_cmd(args) -> int:
    from emoji_reco.aws import event_rules

    if args.action == "lambda-zip":
        from emoji_reco.aws.http_front import build_zip

        print(build_zip(args.output or "emoji-reco-http-front.zip"))
        return 0
    if args.action == "batch-score":
        return batch_score(args)
    verb, kind = args.action.split("-")
    name = args.rule or f"emoji-reco-{kind}"
    if verb == "unwire":
        event_rules.unwire(name)
        print(f"removed rule {name} and its role")
        return 0
    missing = [f"--{n.replace('_', '-')}" for n in ("bucket", "state_machine")[kind == "deploy":]
               if not getattr(args, n)]
    if missing:
        raise EmojiRecoError(f"{args.action} needs {' and '.join(missing)}.")
    if kind == "retrain":
        event_rules.enable_s3_events(args.bucket)
        rule = event_rules.retrain(args.bucket, args.prefix)
    else:
        rule = event_rules.deploy_on_approval(args.group)
    print(json.dumps({**event_rules.wire(rule, args.state_machine, name), "pattern": rule.pattern}, indent=1))
    return 0


def batch_score(args) -> int:
    """Score --input with SageMaker Batch Transform on our inference image; wait for the job unless
    --no-wait."""
    import tempfile

    from emoji_reco import backends
    from emoji_reco.aws import batch_transform
    from emoji_reco.model.bundle import read_metadata
    from emoji_reco.scoring import shards
    from emoji_reco.settings import defaults, load, typed

    missing = [f"--{n}" for n in ("input", "output") if not getattr(args, n)]
    if missing:
        raise EmojiRecoError(f"batch-score needs {' and '.join(missing)}.")
    settings = typed(load(args.config) if args.config else defaults())
    with tempfile.TemporaryDirectory(prefix="emoji-reco-model-") as tmp:
        folder = shards.local_model(args.model, backends.target(settings), tmp)
        version = str(read_metadata(folder).get("run") or "model").rsplit("/", 1)[-1]
        name = batch_transform.start(folder, version, args.input, args.output, settings)
    print(f"started transform job {name}: {args.input} -> {args.output}")
    if args.wait:
        described = batch_transform.wait(name, settings)
        print(f"scores in {described['TransformOutput']['S3OutputPath']} (one .out file per input "
              f"file, a line per line)")
    return 0
