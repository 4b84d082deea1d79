"""`emoji-reco` as a user runs it: scoring a file, the endpoint, errors."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from emoji_reco.data import demo
from emoji_reco.serving.local_endpoint import LocalEndpoint
from helpers.flows import FLOW, card_components, gated_run
from helpers.network import free_port

CARDED_STEPS = {"prepare", "join_convert", "train", "evaluate", "deploy", "end"}


def cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "emoji_reco.cli", *args], capture_output=True, text=True,
                          env=env,
                          cwd=cwd, timeout=120)


def test_predict_on_a_file_keeps_every_row_in_order_and_reports_accuracy(tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    rows = [("so hyped for tonight", "🔥"), ("", "😂"), ("@someone", "😭"), ("monday again", "😩"),
            ("a long one " * 50, "🤔"), ("no label here", "")]
    pd.DataFrame(rows, columns=["TWEET", "LABEL"]).to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", "--model", str(folder), "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "out.csv"), "--top-k", "2", "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert out.text.tolist() == [t for t, _ in rows] and out.row.tolist() == [1, 2, 3, 4, 5, 6]
    assert out.error.tolist() == ["", "empty text after cleaning", "empty text after cleaning", "", "", ""]
    scored = out[out.error == ""]
    assert set(scored.emoji_1) <= set(demo.EMOJIS) and (scored.probability_1 >= scored.probability_2).all()
    assert "top-1 accuracy" in result.stdout and "on 3 labeled rows" in result.stdout
    assert "scoring" in result.stderr  # progress is shown


def test_predict_jsonl_output_and_text_arguments(tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    (tmp_path / "in.jsonl").write_text('{"text": "hello there"}\n{"text": "bye"}\n')
    result = cli("predict", "--model", str(folder), "--input", str(tmp_path / "in.jsonl"), "--output",
                 str(tmp_path / "o.jsonl"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["text"] for r in lines] == ["hello there", "bye"] and "accuracy" not in result.stdout
    text = cli("predict", "--model", str(folder), "first tweet", "second")
    assert text.returncode == 0 and text.stdout.count("\n") == 4


def test_predict_explain_shows_the_words_behind_each_emoji(tiny_bundle):
    _, folder = tiny_bundle
    result = cli("predict", "--model", str(folder), "--top-k", "2", "--explain", "monday monday again")
    assert result.returncode == 0, result.stderr
    text, top, *why = result.stdout.splitlines()
    assert text == "monday monday again" and len(why) == 2
    assert all(any(f"{sign}{word} " in line for sign in "+-" for word in ("monday", "again")) for line in why)


def test_predict_refuses_an_empty_text_in_one_line(tiny_bundle):
    _, folder = tiny_bundle
    result = cli("predict", "--model", str(folder), "fine", "  \x01 ")
    assert result.returncode == 2 and not result.stdout
    assert result.stderr.strip().count("\n") == 0 and "Text 2 is empty" in result.stderr


def test_predict_without_a_deployed_model_says_what_to_do():
    result = cli("predict", "--endpoint", "never-deployed", "hi")
    assert result.returncode == 2
    assert ("No model is deployed to endpoint 'never-deployed'" in result.stderr
            and "Traceback" not in result.stderr)


def test_endpoint_status_and_rollback(tmp_path, tiny_bundle):
    _, folder = tiny_bundle
    endpoint = LocalEndpoint("cli-test")
    endpoint.publish(folder, "a", ["x"])
    endpoint.publish(folder, "b", ["x"])
    status = json.loads(cli("endpoint", "status", "--endpoint", "cli-test").stdout)
    assert status["current"] == "b" and status["versions"] == ["a", "b"]
    assert "now serves a" in cli("endpoint", "rollback", "--endpoint", "cli-test").stdout
    assert endpoint.current_version() == "a"


@pytest.mark.parametrize("args", [
    [],
    ["nonsense"],
    ["predict"],
    ["predict", "--model", "/no/such/bundle", "hi"],
    ["predict", "--endpoint", "nothing-here", "--input", "/no/such.csv"],
    ["predict", "--top-k", "many", "hi"],
    ["endpoint", "rollback", "--endpoint", "nothing-here"],
    ["endpoint", "launch"],
    ["models", "approve"],
    ["models", "approve", "EmojiFlow/12345"],
    ["models", "list", "--registry", "sagemaker"],
    ["cards", "snapshot", "EmojiFlow/12345", "--output", "out"],
    ["serve", "--model", "/no/such/bundle"],
    ["serve", "--port", "eighty"],
    ["aws", "wire-retrain"],
    ["aws", "unwire-retrain"],
    ["aws", "wire-deploy"],
    ["aws", "wire-deploy", "--state-machine", "emoji_reco.prod.DeployFlow"],
    ["demo-data"],
])
def test_every_subcommand_where_nothing_exists_says_what_to_do_in_one_line(tmp_path, args):
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}
    result = cli(*args, env=env, cwd=tmp_path)  # an empty folder: no runs, no endpoint
    ours = [line for line in result.stderr.splitlines() if line.startswith("emoji-reco")]
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(ours) == 1 and len(ours[0]) > 30, result.stderr[-3000:]


def test_models_list_with_no_runs_says_so(tmp_path):
    # Metaflow would look for a .metaflow folder in every folder above, where another run may have left one.
    empty = {**os.environ, "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp_path / ".metaflow")}
    result = cli("models", "list", cwd=tmp_path, env=empty)
    assert (result.returncode == 0 and "No EmojiFlow runs here yet" in result.stdout
            and not result.stderr.strip())


NOTICES = ("cuInit", "CUDA error", "oneDNN", "absl::InitializeLog", "cpu_feature_guard")


def test_cli_output_carries_no_tensorflow_start_up_notices(tiny_bundle):
    _, folder = tiny_bundle
    quiet = cli("predict", "--model", str(folder), "monday again")
    assert quiet.returncode == 0 and not [n for n in NOTICES if n in quiet.stderr], quiet.stderr
    noisy = cli("predict", "--model", str(folder), "monday again",
                env={**os.environ, "EMOJI_RECO_TF_NOTICES": "1"})
    assert any(n in noisy.stderr for n in NOTICES)  # what TensorFlow prints here without the filter
    assert noisy.stdout == quiet.stdout


def test_predict_json_without_an_output_prints_json_lines_and_a_csv_extra_field_is_not_an_index(
        tmp_path, tiny_bundle):
    """The file of issue 26: pandas once took the extra field of `hello, world` as an index column, scoring "
    world" and an empty row and losing two texts; a quote left open once swallowed every row after it without
    a word."""
    _, folder = tiny_bundle
    (tmp_path / "in.csv").write_text('text\nfirst tweet here\nhello, world\n"never '
                                     'closed\nthird\n"two\nlines"\n')
    result = cli("predict", "--model", str(folder), "--input", str(tmp_path / "in.csv"), "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["row"], r["text"]) for r in rows] == [(1, "first tweet here"), (4, "third"), (5, "two\nlines")]
    assert all(r["emoji_1"] in demo.EMOJIS for r in rows) and "skipped 2 malformed rows" in result.stderr


def test_a_rollback_moves_the_champion_so_the_endpoint_and_the_registry_agree(tmp_path, tiny_bundle):
    from metaflow import Run

    from emoji_reco import registry

    _, folder = tiny_bundle
    endpoint = LocalEndpoint(f"rollback-{os.getpid()}-{tmp_path.name[-8:]}")
    older, newer = gated_run(tmp_path, str(folder)), gated_run(tmp_path, str(folder))
    for run in (older, newer):  # as the deploy step does: publish under the run id, then crown the run
        endpoint.publish(folder, run.split("/")[1], ["x"])
        registry.make_champion(run, endpoint.name)
    result = cli("endpoint", "rollback", "--endpoint", endpoint.name, "--flow", "GatedFlow")
    assert result.returncode == 0, result.stderr
    assert endpoint.current_version() == older.split("/")[1]
    tag = registry.champion_tag(endpoint.name)
    assert tag in Run(older).user_tags and tag not in Run(newer).user_tags
    listed = {line.split()[0]: line for line in cli("models", "list", "--flow",
                                                    "GatedFlow").stdout.splitlines()
              if line.startswith("GatedFlow/")}
    assert f"champion:{endpoint.name}" in listed[older] and endpoint.name not in listed.get(newer, "")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_card_viewer_listens_on_loopback_only_and_caches_outside_the_work_tree(champion, tmp_path):
    import httpx

    port = free_port()
    viewer = subprocess.Popen([sys.executable, "-m", "emoji_reco.cli", "cards", "serve", champion.pathspec,
                               "--flow",
                               FLOW, "--port", str(port)], env={**os.environ, "HOME": str(tmp_path)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                runinfo = httpx.get(f"http://127.0.0.1:{port}/runinfo", timeout=30).json()
                break
            except httpx.TransportError:
                time.sleep(0.5)
        listed = {c["task"].split("/")[-2]: c["card"] for c in runinfo["cards"]}
        assert runinfo["run_id"] == champion.id and set(listed) == CARDED_STEPS  # the champion's, every one
        evaluation = card_components(httpx.get(f"http://127.0.0.1:{port}/card/{listed['evaluate']}",
                                               timeout=30).text)
        metrics = champion.data.metrics
        assert all(f"{metrics[name]:.4f}" in evaluation for name in ("top1", "top3", "macro_f1"))
        listening = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if line.split()[3] == "0A"]  # state LISTEN: local address as hex ip:port
        assert f"0100007F:{port:04X}" in listening and f"00000000:{port:04X}" not in listening
    finally:
        viewer.terminate()
        viewer.wait(30)
    assert not Path("metaflow_card_cache").exists()  # nothing left in the work tree


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_card_view_without_a_browser_says_where_the_card_is_and_leaves_the_work_tree_clean(
        champion, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    viewed = subprocess.run([sys.executable, FLOW, "card", "view", f"{champion.id}/evaluate"],
                            capture_output=True,
                            text=True, timeout=240, env={**env, "HOME": str(tmp_path)})
    assert viewed.returncode == 0, viewed.stderr[-3000:]
    url = next(line.split(" ", 1)[1] for line in viewed.stderr.splitlines()
               if line.startswith("card: file://"))
    card = Path(url.removeprefix("file://"))
    assert card.is_relative_to(tmp_path / ".cache" / "emoji-reco") and "<html" in card.read_text().lower()
    assert "emoji-reco cards serve" in viewed.stderr
    # the work tree (the session's working directory) stays clean
    assert not Path("metaflow_card_cache").exists()
