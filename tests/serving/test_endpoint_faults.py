"""The local endpoint under faults: publishers killed with SIGKILL at random points, two publishers at once, a
champion that changes between evaluation and deploy, a rollback to a version that no longer loads."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from emoji_reco.data import demo
from emoji_reco.errors import ModelError
from emoji_reco.model.evaluation import Recheck
from emoji_reco.serving.local_endpoint import HISTORY, POINTER, LocalEndpoint, deploy
from emoji_reco.settings.sections import GateSettings
from helpers.config import typed_settings

pytestmark = pytest.mark.timeout(600)

PUBLISHER = """
import sys, time
import emoji_reco
from pathlib import Path
import tensorflow  # loads before the signal below: the kill window is the publish itself
from emoji_reco.serving.local_endpoint import LocalEndpoint
name, bundle, version, go = sys.argv[1:5]
while go != "-" and not Path(go).exists():
    time.sleep(0.01)
print("start", flush=True)
began = time.perf_counter()
LocalEndpoint(name).publish(Path(bundle), version, ["smoke"])
print(f"done {time.perf_counter() - began:.3f}", flush=True)
"""


def publisher(name, bundle, version, go="-"):
    return subprocess.Popen([sys.executable, "-c", PUBLISHER, name, str(bundle), version, go],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def files(folder: Path) -> set:
    return {(p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


def assert_consistent(endpoint: LocalEndpoint, bundle: Path):
    """The pointer names a complete version, and the history's last record is the pointer's."""
    pointer = json.loads((endpoint.root / POINTER).read_text())
    assert files(endpoint.versions_dir / pointer["version"]) == files(bundle)
    assert endpoint.history()[-1] == pointer


@pytest.mark.slow
def test_a_publisher_killed_at_any_point_leaves_a_complete_version_serving(tiny_bundle):
    _, bundle = tiny_bundle
    name = f"kill-{uuid.uuid4().hex[:6]}"
    endpoint = LocalEndpoint(name)
    endpoint.publish(bundle, "v0", ["smoke"])
    first = publisher(name, bundle, "timed")
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    window = float(out.split()[-1])  # how long one publish takes, from its start to its end
    rng, outcomes = random.Random(7), []
    both = lambda: any(outcomes) and not all(outcomes)  # noqa: E731  kills landed before and after the switch
    while len(outcomes) < 20 or (not both() and len(outcomes) < 40):
        # publishes slower (or faster) than the timed one: widen (or narrow)
        if len(outcomes) >= 10 and not both():
            window = window * 1.5 if not any(outcomes) else window / 1.5
        trial = len(outcomes)
        proc = publisher(name, bundle, f"k{trial}")
        assert proc.stdout.readline().strip() == "start"
        # a kill before the copy, during it, the smoke test, or after
        time.sleep(rng.uniform(0, window * 1.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        outcomes.append(endpoint.current_version() == f"k{trial}")
        # Whatever the kill left, the endpoint serves a complete version; the next publish tidies up.
        pointer = json.loads((endpoint.root / POINTER).read_text())
        assert files(endpoint.versions_dir / pointer["version"]) == files(bundle)
        endpoint.publish(bundle, f"after{trial}", ["smoke"], keep=3)
        assert (not list(endpoint.versions_dir.glob(".staging-*"))
                and not list(endpoint.root.glob(f".{POINTER}.*")))
        assert_consistent(endpoint, bundle)
        assert json.loads((endpoint.root / POINTER).read_text())["previous"] == pointer["version"]
    assert both(), outcomes


@pytest.mark.slow
def test_two_publishers_at_once_both_finish_and_previous_names_the_loser(tiny_bundle, tmp_path):
    _, bundle = tiny_bundle
    name = f"race-{uuid.uuid4().hex[:6]}"
    endpoint = LocalEndpoint(name)
    endpoint.publish(bundle, "v0", ["smoke"])
    go = tmp_path / "go"
    procs = [publisher(name, bundle, v, str(go)) for v in ("a", "b")]
    time.sleep(8)  # both have TensorFlow loaded and wait for the signal
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "done" in out, err
    history = endpoint.history()
    first, second = history[-2], history[-1]
    assert {first["version"], second["version"]} == {"a", "b"} and first["previous"] == "v0"
    assert second["previous"] == first["version"] and endpoint.current_version() == second["version"]
    assert [r["seq"] for r in history] == list(range(1, len(history) + 1))
    assert_consistent(endpoint, bundle)


def test_a_candidate_deploys_only_if_it_still_beats_the_champion_serving_at_deploy_time(tiny_bundle):
    _, bundle = tiny_bundle
    name = f"gate-{uuid.uuid4().hex[:6]}"
    LocalEndpoint(name).publish(bundle, "c0", ["smoke"])
    test = pd.DataFrame({"text": ["so hyped", "ugh monday", "love you", "lol"] * 5,
                         "label": [0, 1, 2, 3] * 5})
    # Candidates' scores out of reach either way, whatever the (random) tiny champion scores on these texts.
    gate = GateSettings(metric="top1", min_score=-1.0, max_regression=0.0)
    settings = typed_settings(**{"deploy.endpoint": name}).deploy
    emojis = demo.EMOJIS

    def candidate(top1, evaluated_against):
        return Recheck(test, emojis, {"top1": top1}, gate, evaluated_against)

    # Evaluated against c0, which still serves: the verdict stands, nothing is scored again.
    assert deploy(str(bundle), settings, "run-a", ["smoke"], candidate(-0.5, "c0"))["deployed"]
    # Run B was also evaluated against c0, but run A deployed since: B is scored against A, and loses.
    late = deploy(str(bundle), settings, "run-b", ["smoke"], candidate(-0.5, "c0"))
    assert not late["deployed"] and "champion changed" in late["reason"]
    assert late["recheck"]["champion"] is not None and LocalEndpoint(name).current_version() == "run-a"
    assert not (LocalEndpoint(name).versions_dir / "run-b").exists()
    # A candidate that beats the new champion goes through.
    assert deploy(str(bundle), settings, "run-c", ["smoke"], candidate(2.0, "c0"))["deployed"]
    assert LocalEndpoint(name).current_version() == "run-c"


def test_rollback_refuses_a_version_that_no_longer_loads(tiny_bundle):
    import shutil

    _, bundle = tiny_bundle
    endpoint = LocalEndpoint(f"rb-{uuid.uuid4().hex[:6]}")
    endpoint.publish(bundle, "a", ["smoke"])
    endpoint.publish(bundle, "b", ["smoke"])
    shutil.rmtree(endpoint.versions_dir / "a" / "saved_model")
    with pytest.raises(ModelError, match="Smoke prediction failed"):
        endpoint.rollback()
    assert endpoint.current_version() == "b"
    shutil.rmtree(endpoint.versions_dir / "a")
    with pytest.raises(ModelError, match="previous version a is gone"):
        endpoint.rollback()


def test_a_lost_history_record_is_restored_by_the_next_change(tiny_bundle):
    _, bundle = tiny_bundle
    endpoint = LocalEndpoint(f"hist-{uuid.uuid4().hex[:6]}")
    endpoint.publish(bundle, "a", ["smoke"])
    endpoint.publish(bundle, "b", ["smoke"])
    lines = (endpoint.root / HISTORY).read_text().splitlines()
    (endpoint.root / HISTORY).write_text(lines[0] + "\n")  # as if killed between the pointer and the history
    endpoint.publish(bundle, "c", ["smoke"])
    assert [r["version"] for r in endpoint.history()] == ["a", "b", "c"]
    (endpoint.root / POINTER).write_text('{"vers')  # a pointer cut short: writers fall back on the history
    endpoint.publish(bundle, "d", ["smoke"])
    assert endpoint.history()[-1]["previous"] == "c" and endpoint.current_version() == "d"
