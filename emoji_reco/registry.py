"""Model registry state as Metaflow run tags, visible wherever runs are inspected.

`model:approved` / `model:rejected` record the quality gate; `model:champion:<endpoint>` marks the run whose
model an endpoint serves (one run per endpoint holds it).
"""
import itertools

from metaflow import Flow, Run, namespace

APPROVED, REJECTED, CHAMPION = "model:approved", "model:rejected", "model:champion"


def champion_tag(endpoint: str) -> str:
    return f"{CHAMPION}:{endpoint}"


def tag_verdict(run_pathspec: str, verdict: dict) -> str:
    """Tag a run approved or rejected (by the quality gate, or by a person); return the tag."""
    tag, other = (APPROVED, REJECTED) if verdict["passed"] else (REJECTED, APPROVED)
    Run(run_pathspec, _namespace_check=False).replace_tag(other, tag)
    return tag


def make_champion(run_pathspec: str, endpoint: str) -> None:
    """Make this run the endpoint's champion; the tag leaves every other run of the flow."""
    from metaflow.exception import MetaflowNotFound

    tag = champion_tag(endpoint)
    namespace(None)
    try:
        champion = Run(run_pathspec, _namespace_check=False)
    except MetaflowNotFound:
        print(f"{run_pathspec} is not in this Metaflow's metadata; no run is tagged the "
              f"champion of {endpoint}")
        return
    for run in Flow(champion.parent.id).runs(tag):
        if run.pathspec != run_pathspec:
            run.remove_tag(tag)
    champion.add_tag(tag)


def rollback(endpoint: str, flow_name: str) -> str:
    """Serve the local endpoint's previous version again and make its run the champion (versions are run ids
    of `flow_name`), so that the endpoint, the run tags and `models list` agree; the version now serving."""
    from emoji_reco.serving.local_endpoint import LocalEndpoint

    version = LocalEndpoint(endpoint).rollback()
    make_champion(f"{flow_name}/{version}", endpoint)
    return version


def approved_run(model: str, flow_name: str = "EmojiFlow") -> dict:
    """A run tagged approved (by the gate or a person) with an evaluated model: `EmojiFlow/1234`, or
    "newest"."""
    from emoji_reco.errors import EmojiRecoError

    namespace(None)
    if model == "newest":
        run = max(Flow(flow_name).runs(APPROVED), key=_start_time, default=None)
        if run is None:
            raise EmojiRecoError(f"No {flow_name} run is approved yet: `emoji-reco models approve "
                                 f"{flow_name}/<run>`.")
    else:
        run = Run(model, _namespace_check=False)
        if APPROVED not in run.user_tags:
            raise EmojiRecoError(f"{model} is not approved: `emoji-reco models approve {model}` first.")
    if "evaluate" not in run or not run["evaluate"].task.finished:
        raise EmojiRecoError(f"{run.pathspec} has no evaluated model to deploy: it stopped "
                             f"before its evaluate step.")
    return {"version": run.id, "run": run.pathspec, "bundle_uri": run["train"].task.data.bundle_uri}


def _start_time(run):
    """When a run started: its start step's time (the run's own moves when its tags change, and so does its
    place in Metaflow's listing)."""
    return run["start"].created_at


def _started(run) -> str:
    return _start_time(run).isoformat(timespec="seconds")


def models(flow_name: str) -> list[dict]:
    """Every registered run, newest first (by start), with its registry state."""
    namespace(None)
    tagged = []
    for run in Flow(flow_name).runs():
        state = sorted(t.removeprefix("model:") for t in run.user_tags if t.startswith("model:"))
        if state:
            tagged.append((_start_time(run), run.pathspec, state))  # one metadata read a run
    return [{"run": pathspec, "state": state, "created_at": started.isoformat(timespec="seconds")}
            for started, pathspec, state in sorted(tagged, key=lambda entry: entry[0], reverse=True)]


def history(flow_name: str, datastore_root: str, limit: int = 20) -> list[dict]:
    """The newest `limit` runs kept in `datastore_root` that got as far as deploy: score, gate verdict,
    deployed or not. Runs in other datastores are left out: reading them may need a store this task can't
    reach."""
    namespace(None)
    out = []
    for run in itertools.islice(Flow(flow_name).runs(), limit):
        try:
            elsewhere = run["start"].task.metadata_dict.get("ds-root") != datastore_root
            if elsewhere or not run["deploy"].task.successful:
                continue  # another datastore's, or failed or still running in deploy
            evaluated, deployed = run["evaluate"].task.data, run["deploy"].task.data
        except KeyError:
            continue  # failed or still running before deploy
        out.append({"run": run.id, "created_at": _started(run),
                    "top1": evaluated.metrics["top1"], "top3": evaluated.metrics["top3"],
                    "verdict": "passed" if evaluated.verdict["passed"] else "failed",
                    "deployed": bool(deployed.deployment["deployed"])})
    return out
