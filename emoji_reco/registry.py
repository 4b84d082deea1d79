"""Model registry state as Metaflow run tags, visible wherever runs are inspected.

`model:approved` / `model:rejected` record the quality gate; `model:champion:<endpoint>` marks the run whose model
an endpoint serves (one run per endpoint holds it).
"""
import itertools

from metaflow import Flow, Run, namespace

APPROVED, REJECTED, CHAMPION = "model:approved", "model:rejected", "model:champion"


def champion_tag(endpoint: str) -> str:
    return f"{CHAMPION}:{endpoint}"


def mark(run_pathspec: str, verdict: dict) -> str:
    """Tag a run approved or rejected (by the quality gate, or by a person); return the tag."""
    tag, other = (APPROVED, REJECTED) if verdict["passed"] else (REJECTED, APPROVED)
    Run(run_pathspec, _namespace_check=False).replace_tag(other, tag)
    return tag


def crown(run_pathspec: str, endpoint: str) -> None:
    """Make this run the endpoint's champion; the tag leaves every other run of the flow."""
    tag = champion_tag(endpoint)
    namespace(None)
    for run in Flow(run_pathspec.split("/")[0]).runs(tag):
        if run.pathspec != run_pathspec:
            run.remove_tag(tag)
    Run(run_pathspec, _namespace_check=False).add_tag(tag)


def deploy_approved(run_pathspec: str) -> dict:
    """Publish a run's model to the local endpoint its config names, after the same smoke prediction as its deploy
    step, and crown it there: a person's approval (`emoji-reco models approve RUN --deploy`) overrides the gate."""
    from emoji_reco import backends
    from emoji_reco.errors import EmojiRecoError

    run = Run(run_pathspec, _namespace_check=False)
    if "evaluate" not in run or not run["evaluate"].task.finished:
        raise EmojiRecoError(f"{run_pathspec} has no evaluated model to deploy: it stopped before its evaluate step.")
    settings, bundle_uri = run["start"].task.data.settings, run["train"].task.data.bundle_uri
    smoke = run["prepare"].task.data.splits["test"].text.head(3).tolist()
    target = backends.target(settings)
    if not isinstance(target, backends.LocalTarget):
        raise EmojiRecoError(f"{run_pathspec} deploys to {settings['deploy']['target']}: approve its model package "
                             "there (`emoji-reco models approve VERSION --registry sagemaker`).")
    deployment = target.deploy(backends.RunInfo(run.pathspec, run.id, "", ""), bundle_uri,
                               {"passed": True, "reasons": ["approved by hand"]}, smoke)
    if deployment["deployed"]:
        crown(run.pathspec, settings["deploy"]["endpoint"])
    return deployment


def _started(run) -> str:
    # A run's own timestamp moves when its tags change; its start step's doesn't.
    return run["start"].created_at.isoformat(timespec="seconds")


def models(flow_name: str) -> list[dict]:
    """Every registered run, newest first, with its registry state."""
    namespace(None)
    out = []
    for run in Flow(flow_name).runs():
        state = sorted(t.removeprefix("model:") for t in run.user_tags if t.startswith("model:"))
        if state:
            out.append({"run": run.pathspec, "state": state, "created_at": _started(run)})
    return out


def history(flow_name: str, datastore_root: str, limit: int = 20) -> list[dict]:
    """The newest `limit` runs kept in `datastore_root` that got as far as deploy: score, gate verdict, deployed
    or not. Runs in other datastores are left out: reading them may need a store this task can't reach."""
    namespace(None)
    out = []
    for run in itertools.islice(Flow(flow_name).runs(), limit):
        try:
            if run["start"].task.metadata_dict.get("ds-root") != datastore_root:
                continue
            evaluated, deployed = run["evaluate"].task.data, run["deploy"].task.data
        except KeyError:
            continue  # failed or still running before deploy
        out.append({"run": run.id, "created_at": _started(run),
                    "top1": evaluated.metrics["top1"], "top3": evaluated.metrics["top3"],
                    "verdict": "passed" if evaluated.verdict["passed"] else "failed",
                    "deployed": bool(deployed.deployment["deployed"])})
    return out
