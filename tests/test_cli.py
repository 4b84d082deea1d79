"""`emoji-reco` as a user runs it: scoring a file, the endpoint, errors."""
import json
import subprocess
import sys

import pandas as pd

from emoji_reco import demo_data
from emoji_reco.endpoint import LocalEndpoint


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "emoji_reco.cli", *args], capture_output=True, text=True, env=env)


def test_predict_on_a_file_keeps_every_row_in_order_and_reports_accuracy(tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    rows = [("so hyped for tonight", "🔥"), ("", "😂"), ("@someone", "😭"), ("monday again", "😩"),
            ("a long one " * 50, "🤔"), ("no label here", "")]
    pd.DataFrame(rows, columns=["TWEET", "LABEL"]).to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", "--model", str(folder), "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "out.csv"), "--top-k", "2", "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert out.text.tolist() == [t for t, _ in rows]
    assert out.error.tolist() == ["", "empty text after cleaning", "empty text after cleaning", "", "", ""]
    scored = out[out.error == ""]
    assert set(scored.emoji_1) <= set(demo_data.EMOJIS) and (scored.probability_1 >= scored.probability_2).all()
    assert "top-1 accuracy" in result.stdout and "on 3 labeled rows" in result.stdout
    assert "scoring" in result.stderr  # progress is shown


def test_predict_jsonl_output_and_text_arguments(tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    (tmp_path / "in.jsonl").write_text('{"text": "hello there"}\n{"text": "bye"}\n')
    result = cli("predict", "--model", str(folder), "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "o.jsonl"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["text"] for r in lines] == ["hello there", "bye"] and "accuracy" not in result.stdout
    text = cli("predict", "--model", str(folder), "first tweet", "second")
    assert text.returncode == 0 and text.stdout.count("\n") == 4


def test_predict_without_a_deployed_model_says_what_to_do():
    result = cli("predict", "--endpoint", "never-deployed", "hi")
    assert result.returncode == 2
    assert "No model is deployed to endpoint 'never-deployed'" in result.stderr and "Traceback" not in result.stderr


def test_endpoint_status_and_rollback(tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    endpoint = LocalEndpoint("cli-test")
    endpoint.publish(folder, "a", ["x"])
    endpoint.publish(folder, "b", ["x"])
    status = json.loads(cli("endpoint", "status", "--endpoint", "cli-test").stdout)
    assert status["current"] == "b" and status["versions"] == ["a", "b"]
    assert "now serves a" in cli("endpoint", "rollback", "--endpoint", "cli-test").stdout
    assert endpoint.current_version() == "a"
