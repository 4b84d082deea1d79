"""Retries where a step does I/O: a flow's `start` that writes to the datastore meets a transient fault once
(the datastore write fails in the task's process, injected through sitecustomize) and the run still
succeeds."""
import os

import pytest

from emoji_reco.serving.local_endpoint import LocalEndpoint
from helpers.flows import ROOT, flow_config, run_flow

SCORE_FLOW = str(ROOT / "flows" / "score_flow.py")
FAULT_ONCE = '''
import os
import pathlib

from emoji_reco import storage

_put_dir = storage.put_dir


def put_dir(*args, **kwargs):
    marker = pathlib.Path(os.environ["EMOJI_RECO_FAULT_MARKER"])
    if not marker.exists():
        marker.write_text("failed once")
        raise ConnectionError("injected: the connection to the datastore was reset")
    return _put_dir(*args, **kwargs)


storage.put_dir = put_dir
'''


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("retries", [0, 1])
def test_a_start_that_writes_to_the_datastore_is_retried_after_a_transient_fault(
        tmp_path, tiny_bundle, retries):
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(FAULT_ONCE)
    (tmp_path / "in.csv").write_text("text\nfirst tweet\nsecond tweet\n", encoding="utf-8")
    LocalEndpoint("retry-test").publish(tiny_bundle[1], "v1", ["smoke"])
    config = flow_config(**{"deploy.endpoint": "retry-test", "platform.retries": retries,
                            "platform.retry_minutes": 0})
    inject = os.pathsep.join(p for p in (str(tmp_path / "inject"), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": inject, "EMOJI_RECO_FAULT_MARKER": str(tmp_path / "failed-once")}
    status, run, output = run_flow(config, flow=SCORE_FLOW, env=env, input=str(tmp_path / "in.csv"),
                                   output=str(tmp_path / "scores"))
    assert (tmp_path / "failed-once").exists()  # the fault happened
    if retries:
        assert status == "successful", output[-4000:]
        assert run["start"].task.current_attempt == 1 and (tmp_path / "scores" / "manifest.json").exists()
    else:
        assert status == "failed" and "injected: the connection to the datastore was reset" in output
