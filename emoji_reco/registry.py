"""Model registry state as Metaflow run tags, visible wherever runs are inspected."""
from metaflow import Flow, Run, namespace

APPROVED, REJECTED, CHAMPION = "model:approved", "model:rejected", "model:champion"


def mark(run_pathspec: str, verdict: dict) -> str:
    """Tag a run approved or rejected by the quality gate; return the tag."""
    tag = APPROVED if verdict["passed"] else REJECTED
    Run(run_pathspec, _namespace_check=False).add_tag(tag)
    return tag


def crown(run_pathspec: str) -> None:
    """Make this run the champion; the tag leaves every other run of the flow."""
    flow_name = run_pathspec.split("/")[0]
    namespace(None)
    for run in Flow(flow_name).runs(CHAMPION):
        if run.pathspec != run_pathspec:
            run.remove_tag(CHAMPION)
    Run(run_pathspec, _namespace_check=False).add_tag(CHAMPION)


def models(flow_name: str) -> list[dict]:
    """Every registered run, newest first, with its registry state."""
    namespace(None)
    out = []
    for run in Flow(flow_name).runs():
        tags = set(run.user_tags)
        state = [t.split(":", 1)[1] for t in (CHAMPION, APPROVED, REJECTED) if t in tags]
        if state:
            out.append({"run": run.pathspec, "state": state, "created_at": str(run.created_at)})
    return out


def history(flow_name: str, limit: int = 20) -> list[dict]:
    """The newest `limit` runs that got as far as deploy: score, gate verdict, deployed or not."""
    import itertools

    namespace(None)
    out = []
    for run in itertools.islice(Flow(flow_name).runs(), limit):
        try:
            evaluated, deployed = run["evaluate"].task.data, run["deploy"].task.data
        except KeyError:
            continue  # failed or still running before deploy
        out.append({"run": run.id, "created_at": run.created_at.isoformat(timespec="seconds"),
                    "top1": evaluated.metrics["top1"], "top3": evaluated.metrics["top3"],
                    "verdict": "passed" if evaluated.verdict["passed"] else "failed",
                    "deployed": bool(deployed.deployment["deployed"])})
    return out
