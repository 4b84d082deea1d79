"""ScoreFlow through Metaflow's Runner: a file in shards, scored in a foreach, the same rows `emoji-reco
predict --input` writes, a manifest that counts every row, and a second run that keeps the shards already
scored."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from emoji_reco.backends.local import LocalTarget
from emoji_reco.errors import ModelError
from emoji_reco.scoring import shards
from emoji_reco.serving.local_endpoint import LocalEndpoint
from helpers.config import typed_settings
from helpers.flows import ROOT, flow_config, run_flow

SCORE_FLOW = str(ROOT / "flows" / "score_flow.py")


def _input(tmp_path):
    """20 texts with labels, two empty after cleaning, and one row with an extra field (malformed)."""
    rows = [f"tweet number {i} is fun" for i in range(20)]
    rows[3], rows[11] = "", "@someone"
    lines = ["text,label"] + [f'"{t}",🔥' for t in rows]
    lines.insert(8, "hello, world, extra")
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "in.csv"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_shards_score_the_rows_predict_scores_count_every_row_and_a_rerun_keeps_finished_shards(
        tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    source, out = _input(tmp_path), tmp_path / "scores"
    LocalEndpoint("score-test").publish(folder, "v1", ["smoke"])
    config = flow_config(**{"score.shard_rows": 7, "deploy.endpoint": "score-test"})
    # the champion
    status, run, output = run_flow(config, flow=SCORE_FLOW, input=str(source), output=str(out))
    assert status == "successful", output[-4000:]
    parts = sorted(out.glob("part-*.csv"))
    assert [p.name for p in parts] == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    predicted = subprocess.run([sys.executable, "-m", "emoji_reco.cli", "predict", "--model", str(folder),
                                "--input",
                                str(source), "--output", str(tmp_path / "predict.csv")], capture_output=True,
                                text=True)
    assert predicted.returncode == 0, predicted.stderr
    expected = pd.read_csv(tmp_path / "predict.csv", keep_default_na=False, dtype=str)
    scored = pd.concat([pd.read_csv(p, keep_default_na=False, dtype=str) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(scored, expected)
    # the input's numbers; 8 is malformed
    assert scored.row.astype(int).tolist() == [*range(1, 8), *range(9, 22)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == run["join"].task["manifest"].data
    assert (manifest["rows_in"], manifest["rows_out"], manifest["scored"]) == (21, 20, 18)
    assert manifest["not_scored"] == {"empty text after "
                                      "cleaning": 2} and manifest["dropped"] == {"malformed_row": 1}
    assert manifest["reused_shards"] == 0 and "shard 2: 6 rows" in run["start"].task.stderr  # progress

    kept = parts[0].stat().st_mtime_ns
    (out / "part-00001.csv").unlink()
    (out / "part-00001.json").unlink()  # as if that shard's task had failed
    status, run, output = run_flow(config, flow=SCORE_FLOW, input=str(source), output=str(out),
                                   model=str(folder))
    assert status == "successful", output[-4000:]
    manifest = json.loads((out / "manifest.json").read_text())
    # the same model (a folder now, the champion before), by its content
    assert manifest["reused_shards"] == 2
    assert sum("scored by an earlier run" in t.stderr for t in run["score"]) == 2
    assert parts[0].stat().st_mtime_ns == kept
    rescored = pd.concat([pd.read_csv(p, keep_default_na=False,
                                      dtype=str) for p in sorted(out.glob("part-*.csv"))],
                         ignore_index=True)
    pd.testing.assert_frame_equal(rescored, expected)


def test_without_a_model_or_a_champion_it_says_what_to_pass(tmp_path):
    settings = typed_settings(**{"deploy.endpoint": "never-deployed-for-scoring"})
    with pytest.raises(ModelError, match="pass --model"):
        shards.pin_model("", LocalTarget(settings), str(tmp_path / "run"))
    with pytest.raises(ModelError, match="EmojiFlow/999999 not found"):
        shards.pin_model("EmojiFlow/999999", LocalTarget(settings), str(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_flow_runs_as_root_with_no_user_named(tmp_path, tiny_bundle):
    """A container's usual state: root, no USER, no METAFLOW_USER. Metaflow takes no run without a user."""
    import os

    config = tmp_path / "config.json"
    config.write_text(json.dumps(flow_config()))
    (tmp_path / "in.csv").write_text("text\nfirst tweet\nsecond tweet\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "USERNAME", "SUDO_USER", "METAFLOW_USER")}
    done = subprocess.run([sys.executable, SCORE_FLOW, "--config", "config", str(config), "run",
                           "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out"),
                           "--model", str(tiny_bundle[1])], env={**env, "USER": "root"}, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Unknown user" not in done.stderr and (tmp_path / "out" / "part-00000.csv").exists()
