"""SageMaker's Model Registry (against moto) and the local registry, through `emoji-reco models`."""

import pytest

from emoji_reco import cli
from emoji_reco.aws import model_registry
from helpers.flows import gated_run
from helpers.sagemaker_job import settings

pytestmark = pytest.mark.timeout(600)


def test_the_registry_keeps_versions_approvals_and_the_newest_approved(aws, packaged, capsys):
    model, run_root = packaged
    group = f"emoji-{aws[1]}"
    metrics = {"top1": 0.4, "top3": 0.7, "macro_f1": 0.3}
    passed, failed = {"passed": True, "reasons": ["ok"]}, {"passed": False, "reasons": ["too low"]}
    auto = settings(**{"sagemaker.registry.group": group})
    manual = settings(**{"sagemaker.registry.group": group, "sagemaker.registry.approval": "manual"})
    first = model_registry.register({**model, "version": "1"}, auto, "EmojiFlow/1", metrics, passed, run_root)
    second = model_registry.register({**model, "version": "2"}, auto, "EmojiFlow/2", metrics, failed,
                                     run_root)
    third = model_registry.register({**model, "version": "3"}, manual, "EmojiFlow/3", metrics, passed,
                                    run_root)
    assert [first["status"], second["status"], third["status"]] == ["Approved", "Rejected",
                                                                    "PendingManualApproval"]
    assert [v["version"] for v in model_registry.versions(group)] == ["3", "2", "1"]
    newest = model_registry.newest_approved(group)
    assert (newest["version"] == "1" and newest["model_data"] == model["model_data"] and newest["top1"]
            == "0.4000")

    assert cli.main(["models", "approve", third["arn"], "--registry", "sagemaker", "--group", group]) == 0
    assert model_registry.newest_approved(group)["version"] == "3"
    assert cli.main(["models", "reject", "3", "--registry", "sagemaker", "--group", group, "--note",
                     "bias"]) == 0
    assert model_registry.newest_approved(group)["version"] == "1"
    capsys.readouterr()
    assert cli.main(["models", "list", "--registry", "sagemaker", "--group", group]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in listed] == ["Rejected", "Rejected", "Approved"]
    assert cli.main(["models", "approve", "99", "--registry", "sagemaker", "--group", group]) == 2


def test_local_models_can_be_rejected_and_approved_by_hand(tmp_path, capsys):
    from emoji_reco import registry

    run = gated_run(tmp_path)
    assert cli.main(["models", "reject", run]) == 0
    assert "rejected" in next(m["state"] for m in registry.models("GatedFlow") if m["run"] == run)
    assert cli.main(["models", "approve", run]) == 0
    state = next(m["state"] for m in registry.models("GatedFlow") if m["run"] == run)
    assert "approved" in state and "rejected" not in state
    capsys.readouterr()
    assert cli.main(["models", "list", "--flow", "GatedFlow"]) == 0 and "approved" in capsys.readouterr().out
