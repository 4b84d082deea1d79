"""The local registry's tags on real Metaflow runs (RegistryFlow, a flow of the test's own, run through the
Runner): the gate's approved / rejected, the champion tag that one run per endpoint holds, the approved run
DeployFlow takes, and the lists `models list` and the summary card read."""
import pytest

from emoji_reco import registry
from emoji_reco.errors import EmojiRecoError

FLOW = '''
from metaflow import FlowSpec, Parameter, step


class RegistryFlow(FlowSpec):
    top1 = Parameter("top1", default=0.5)
    stop_before_deploy = Parameter("stop_before_deploy", default=False)

    @step
    def start(self):
        self.next(self.train)

    @step
    def train(self):
        self.bundle_uri = f"/bundles/{self.top1}"
        self.next(self.evaluate)

    @step
    def evaluate(self):
        self.metrics = {"top1": self.top1, "top3": self.top1 + 0.25}
        self.verdict = {"passed": self.top1 >= 0.5}
        self.next(self.deploy)

    @step
    def deploy(self):
        if self.stop_before_deploy:
            raise RuntimeError("stopped")
        self.deployment = {"deployed": self.verdict["passed"]}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RegistryFlow()
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three finished runs (top-1 0.5, 0.25, 0.75) and one that stopped before deploy, oldest first:
    pathspecs."""
    from metaflow import Runner

    flow = tmp_path_factory.mktemp("flow") / "registry_flow.py"
    flow.write_text(FLOW)
    made = []
    for top1, stop in ((0.5, False), (0.25, False), (0.75, False), (0.5, True)):
        with Runner(str(flow), show_output=False).run(top1=top1, stop_before_deploy=stop) as result:
            made.append(result.run.pathspec)
    return made


def tags(pathspec):
    from metaflow import Run

    return {t for t in Run(pathspec, _namespace_check=False).user_tags if t.startswith("model:")}


def test_the_gate_marks_a_run_approved_or_rejected_and_a_person_can_turn_it(runs):
    def verdicts():
        return tags(runs[0]) & {registry.APPROVED, registry.REJECTED}

    assert registry.tag_verdict(runs[0],
                                {"passed": True}) == "model:approved" and verdicts() == {"model:approved"}
    assert registry.tag_verdict(runs[0],
                                {"passed": False}) == "model:rejected" and verdicts() == {"model:rejected"}
    assert registry.tag_verdict(runs[0],
                                {"passed": True}) == "model:approved" and verdicts() == {"model:approved"}


def test_one_run_per_endpoint_holds_the_champion_tag(runs, capsys):
    assert registry.champion_tag("shop") == "model:champion:shop"
    registry.make_champion(runs[1], "shop")
    registry.make_champion(runs[2], "other")
    assert "model:champion:shop" in tags(runs[1]) and "model:champion:other" in tags(runs[2])
    registry.make_champion(runs[2], "shop")
    assert "model:champion:shop" not in tags(runs[1]) and {"model:champion:shop",
                                                           "model:champion:other"} <= tags(runs[2])
    registry.make_champion(runs[2], "shop")  # again: still the one holder
    assert "model:champion:shop" in tags(runs[2])
    flow = runs[0].split("/")[0]
    registry.make_champion(f"{flow}/999999", "shop")
    assert capsys.readouterr().out == (f"{flow}/999999 is not in this Metaflow's metadata; "
                                       f"no run is tagged the "
                                       "champion of shop\n")
    assert "model:champion:shop" in tags(runs[2])


def test_deploy_flow_takes_an_approved_evaluated_run_or_the_newest_and_says_why_not(runs):
    flow = runs[0].split("/")[0]
    for run in runs:
        registry.tag_verdict(run, {"passed": False})
    with pytest.raises(EmojiRecoError, match=f"^No {flow} run is approved yet: `emoji-reco models "
                                             f"approve {flow}/<run>`."):
        registry.approved_run("newest", flow)
    with pytest.raises(EmojiRecoError, match=f"^{runs[1]} is not approved: `emoji-reco models approve "
                                             f"{runs[1]}` first."):
        registry.approved_run(runs[1], flow)
    registry.tag_verdict(runs[1], {"passed": True})
    # approved last, started first: the newest approved is still runs[1]
    registry.tag_verdict(runs[0], {"passed": True})
    assert registry.approved_run("newest", flow) == {"version": runs[1].split("/")[1], "run": runs[1],
                                                      "bundle_uri": "/bundles/0.25"}
    assert registry.approved_run(runs[0], flow)["bundle_uri"] == "/bundles/0.5"


def test_models_lists_every_run_with_registry_tags_newest_first(runs):
    from metaflow import Run

    flow = runs[0].split("/")[0]
    registry.tag_verdict(runs[0], {"passed": True})
    registry.tag_verdict(runs[2], {"passed": False})
    listed = {m["run"]: m for m in registry.models(flow)}
    # by start, newest first
    assert [m["run"] for m in registry.models(flow)] == [r for r in reversed(runs) if tags(r)]
    assert {runs[0], runs[2]} <= set(listed)
    assert "approved" not in listed[runs[2]]["state"] and "rejected" in listed[runs[2]]["state"]
    assert listed[runs[0]]["state"] == sorted(t.removeprefix("model:") for t in tags(runs[0]))
    assert listed[runs[0]]["created_at"] == Run(runs[0],
                                                _namespace_check=False)["start"].created_at.isoformat(
        timespec="seconds")


def test_history_holds_the_runs_that_got_through_deploy_in_this_datastore(runs):
    from metaflow import Run

    flow = runs[0].split("/")[0]
    root = Run(runs[0], _namespace_check=False)["start"].task.metadata_dict["ds-root"]
    history = {h["run"]: h for h in registry.history(flow, root)}
    assert set(history) == {r.split("/")[1] for r in runs[:3]}  # the one that failed in deploy is left out
    newest = history[runs[2].split("/")[1]]
    assert newest == {"run": runs[2].split("/")[1],
                      "created_at": Run(runs[2], _namespace_check=False)["start"]
                      .created_at.isoformat(timespec="seconds"), "top1": 0.75, "top3": 1.0,
                      "verdict": "passed",
                      "deployed": True}
    worst = history[runs[1].split("/")[1]]
    assert (worst["verdict"], worst["deployed"], worst["top1"]) == ("failed", False, 0.25)
    assert len(registry.history(flow, root, limit=2)) < 3  # at most the 2 newest runs are read
    assert registry.history(flow, "/another/datastore") == []


def test_a_rollback_serves_the_previous_version_again_and_moves_the_champion_tag_to_its_run(
        runs, tiny_bundle):
    from emoji_reco.serving.local_endpoint import LocalEndpoint

    flow, endpoint = runs[0].split("/")[0], LocalEndpoint("registry-rollback")
    for run in (runs[0], runs[2]):
        endpoint.publish(tiny_bundle[1], run.split("/")[1], ["smoke"])
        registry.make_champion(run, endpoint.name)
    assert registry.rollback(endpoint.name, flow) == runs[0].split("/")[1]
    assert endpoint.current_dir().name == runs[0].split("/")[1]
    assert ("model:champion:registry-rollback" in tags(runs[0])
            and "model:champion:registry-rollback" not in tags(runs[2]))
