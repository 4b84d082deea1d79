"""MultiNodeEmojiFlow for real on this machine: Metaflow runs its `@parallel` train step as two local
processes (as it would run two nodes of a multi-node Batch job), which find each other through the run's
datastore and train one model through collective ops; then the rest of EmojiFlow evaluates, registers and
serves node 0's bundle."""
import os
import sys
import threading
from pathlib import Path

import pytest

from emoji_reco.errors import EmojiRecoError
from emoji_reco.flowkit import placement
from emoji_reco.model import distribution
from helpers.config import typed_settings
from helpers.flows import ROOT, run_flow, tiny_flow_config
from helpers.network import consecutive_free_ports

MULTINODE_FLOW = str(ROOT / "flows" / "multinode_flow.py")


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_two_parallel_nodes_train_one_model_and_the_chief_bundle_serves(tiny_model, monkeypatch):
    # Metaflow starts
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # the second node with the `python` on PATH
    config = tiny_flow_config(tiny_model, **{"train.workers": 2, "deploy.endpoint": "multinode",
                                             "deploy.flow": "MultiNodeEmojiFlow",
                                             "train.distribution.port": consecutive_free_ports()})
    status, run, output = run_flow(config, flow=MULTINODE_FLOW)
    assert status == "successful", output[-4000:]
    trained = [t["training"].data for t in run["train"]]
    assert len(trained) == 2
    for t in trained:
        assert t["distribution"]["strategy"] == "MultiWorkerMirrored" and t["distribution"]["replicas"] == 2
    chief, other = sorted(trained, key=lambda t: t.get("bundle_uri") is None)
    assert chief["bundle_uri"] and other["bundle_uri"] is None  # written once, by node 0
    # one model, one loss
    assert [h["loss"] for h in chief["history"]] == [h["loss"] for h in other["history"]]
    assert run["join_train"].task["bundle_uri"].data == chief["bundle_uri"]
    # one bundle in the run's folder
    assert len(list(Path(chief["bundle_uri"]).parent.rglob("metadata.json"))) == 1
    deployment = run["deploy"].task["deployment"].data
    assert deployment["deployed"] and deployment["smoke"], deployment


def test_nodes_meet_through_a_shared_folder_and_name_every_worker_in_node_order(tmp_path):
    settings = typed_settings(**{"train.distribution.port": 4000}).train.distribution
    found = {}

    def node(index):
        found[index] = distribution.parallel_tf_config(3, index, "127.0.0.1", str(tmp_path / "gang"),
                                                       settings)

    threads = [threading.Thread(target=node, args=(i,)) for i in (2, 0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    workers = ["127.0.0.1:4000", "127.0.0.1:4001", "127.0.0.1:4002"]
    assert found == {i: {"cluster": {"worker": workers},
                         "task": {"type": "worker", "index": i}} for i in range(3)}
    assert distribution.parallel_tf_config(1, 0, "127.0.0.1", str(tmp_path / "alone"), settings) is None


def test_a_node_that_never_comes_ends_the_others_with_which_one_within_the_timeout(tmp_path):
    with pytest.raises(Exception, match=r"Node\(s\) 1 of 2 did not start within 1 s"):
        distribution.parallel_tf_config(2, 0, "127.0.0.1", str(tmp_path), typed_settings(**{
            "train.distribution.port": 4000,
            "train.distribution.start_timeout_seconds": 1}).train.distribution)


@pytest.mark.parametrize("workers, backend, multinode, says", [
    (2, "local", False, "run flows/multinode_flow.py"),
    (2, "sagemaker", True, "sagemaker.training.instance_count"),
    (0, "local", True, "at least 1"),
])
def test_workers_that_the_flow_or_backend_cannot_run_are_refused_up_front(workers, backend, multinode, says):
    with pytest.raises(EmojiRecoError, match=says):
        placement.training_nodes(typed_settings(**{"train.workers": workers, "train.backend": backend}).train,
                                 multinode)
    assert placement.training_nodes(typed_settings(**{"train.backend": backend}).train, False) == 1
