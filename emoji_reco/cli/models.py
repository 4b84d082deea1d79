"""`emoji-reco models` and `emoji-reco endpoint`: the registry (through the deploy target that keeps it) and
the local endpoint's versions."""
import json

from emoji_reco.errors import EmojiRecoError


def add(sub) -> None:
    ep = sub.add_parser("endpoint", help="show the local endpoint, or roll it back one version")
    ep.add_argument("action", choices=["status", "rollback"])
    ep.add_argument("--endpoint", default="emoji-reco")
    ep.add_argument("--flow", default="EmojiFlow", help="rollback: the flow whose run the version is (its "
                                                        "run becomes the champion)")
    ep.set_defaults(func=endpoint_cmd)

    mo = sub.add_parser("models", help="registered models: list, approve or reject (run tags, or "
                                       "SageMaker's registry)")
    mo.add_argument("action", choices=["list", "approve", "reject"])
    mo.add_argument("model", nargs="?", help="run (EmojiFlow/1234), or SageMaker package version or ARN")
    mo.add_argument("--registry", choices=["local", "sagemaker"], default="local",
                    help="local: Metaflow run tags; sagemaker: the SageMaker Model Registry")
    mo.add_argument("--group", default="emoji-reco", help="SageMaker model package group")
    mo.add_argument("--note", default="", help="approval note (SageMaker)")
    mo.add_argument("--flow", default="EmojiFlow", help="the flow whose runs' tags are the local registry")
    mo.add_argument("--deploy", action="store_true",
                    help="approve: also publish the run's model to its local endpoint, "
                         "after a smoke prediction")
    mo.set_defaults(func=models_cmd)


def endpoint_cmd(args) -> int:
    from emoji_reco import registry
    from emoji_reco.serving.local_endpoint import LocalEndpoint

    endpoint = LocalEndpoint(args.endpoint)
    if args.action == "rollback":
        print(f"endpoint {endpoint.name} now serves {registry.rollback(endpoint.name, args.flow)}")
    else:
        print(json.dumps({"endpoint": endpoint.name, "path": str(endpoint.root),
                          "current": endpoint.current_version(),
                          "versions": endpoint.versions()}, indent=1))
    return 0


def _registry_settings(args):
    from emoji_reco.settings import defaults, typed, with_overrides

    return typed(with_overrides(defaults(), {"deploy.target": args.registry, "deploy.flow": args.flow,
                                       "sagemaker.registry.group": args.group}))


def _list(target, args) -> int:
    from metaflow.exception import MetaflowNotFound

    try:
        models = target.models()
    except MetaflowNotFound:
        print(f"No {args.flow} runs here yet (Metaflow looks in the .metaflow folder of "
              f"this directory or above "
              "it, or in your configured datastore). Run `python flows/emoji_flow.py run` first.")
        return 0
    for model in models:
        print(f"{model.reference:40} {model.state:22} {model.created_at}  {model.summary}".rstrip())
    if not models:
        print("No registered models yet: no run has reached its register step.")
    return 0


def models_cmd(args) -> int:
    from emoji_reco import backends

    target = backends.target(_registry_settings(args))
    if args.action == "list":
        return _list(target, args)
    if not args.model:
        raise EmojiRecoError(f"models {args.action} needs the run (EmojiFlow/1234) or the "
                             f"package version or ARN.")
    if args.deploy and args.registry != "local":
        raise EmojiRecoError("--deploy publishes a run to its local endpoint; on "
                             "SageMaker an approval starts "
                             "DeployFlow (`emoji-reco aws wire-deploy`).")
    print(target.set_approval(args.model, args.action == "approve", args.note))
    if args.deploy and args.action == "approve":
        deployment = _deploy_approved(args.model)
        print(f"endpoint {deployment.endpoint} now serves {deployment.version}" if deployment.deployed
              else f"not deployed: {deployment.reason}")
    return 0


def _deploy_approved(run: str):
    """Serve an approved run's model with the settings it ran with (over today's defaults), as DeployFlow
    would."""
    from metaflow import Run

    from emoji_reco.backends import approvals
    from emoji_reco.settings import defaults, merge, typed

    ran_with = Run(run, _namespace_check=False)["start"].task.data.settings
    return approvals.deploy_approved(typed(merge(defaults(), ran_with)), run)
