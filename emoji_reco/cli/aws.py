"""`emoji-reco aws`: the EventBridge rules that retrain on new data and deploy on approval, and the HTTP front's
Lambda package."""
import json

from emoji_reco.errors import EmojiRecoError


def add(sub) -> None:
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
