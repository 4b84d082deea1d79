"""Whole EmojiFlow runs through Metaflow's Runner on the demo data with a tiny BERT."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emoji_reco import registry
from emoji_reco.data import demo
from emoji_reco.model import bundle, tfrecords
from emoji_reco.serving.local_endpoint import LocalEndpoint
from helpers.flows import DEPLOY_FLOW, card_json, run_flow, task, tiny_flow_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_prepare_labels_and_splits_every_kept_row(champion):
    prepare = task(champion, "prepare").data
    assert prepare.emojis and set(prepare.emojis) == set(demo.EMOJIS)
    assert sum(len(s) for s in prepare.splits.values()) == prepare.data_report["rows_kept"]


def test_convert_writes_every_split_in_two_shards_under_the_runs_prefix_with_checksums(champion, session_dir):
    prepare, records = task(champion, "prepare").data, task(champion, "join_convert").data.tfrecords
    assert len(records) == 6 and {r["shard"] for r in records} == {0, 1}
    prefix = session_dir / ".metaflow" / "EmojiFlow" / champion.id / "emoji_reco"
    for r in records:  # under the run's own prefix in the datastore root the run used
        assert Path(r["uri"]).parent == prefix / "tfrecords" and tfrecords.sha256(r["uri"]) == r["sha256"]
    for split, frame in prepare.splits.items():
        assert sum(r["records"] for r in records if r["split"] == split) == len(frame)


def test_evaluate_scores_the_test_split_in_full(champion):
    prepare, training = task(champion, "prepare").data, task(champion, "train").data.training
    metrics = task(champion, "evaluate").data.metrics
    assert len(training["history"]) == 1 and {"loss", "val_accuracy"} <= set(training["history"][0])
    assert {"top1", "top3", "macro_f1", "per_emoji", "confusion"} <= set(metrics)
    assert metrics["top3"] >= metrics["top1"]
    assert sum(map(sum, metrics["confusion"])) == len(prepare.splits["test"])


def test_a_run_that_passes_the_gate_is_approved_crowned_and_serves_its_bundle(champion):
    prepare = task(champion, "prepare").data
    assert {registry.APPROVED, registry.champion_tag("emoji-reco")} <= set(champion.user_tags)
    deployment = task(champion, "deploy").data.deployment
    assert deployment["deployed"] and deployment["version"] == champion.id
    served = LocalEndpoint("emoji-reco").current_dir()
    assert served.name == champion.id
    assert bundle.read_labels(served) == prepare.emojis
    assert bundle.read_metadata(served)["run"] == champion.pathspec
    assert (served / "saved_model" / "saved_model.pb").is_file() and (served / "tokenizer"
                                                                      / "tokenizer.json").is_file()


def test_one_bundle_holds_the_combined_model_with_the_weight_chosen_on_validation(champion):
    training, metrics = task(champion, "train").data.training, task(champion, "evaluate").data.metrics
    metadata = bundle.read_metadata(LocalEndpoint("emoji-reco").current_dir())
    assert metadata["format"] == bundle.FORMAT and metadata["ensemble"] == training["ensemble"]
    assert (metadata["ensemble"]["chosen"] == "validation log-loss" and 0 <= metadata["ensemble"]["weight"]
            <= 1)
    assert metrics["parts"]["weight"] == metadata["ensemble"]["weight"]
    assert metrics["parts"]["combined"]["top1"] == metrics["top1"]


def test_the_evaluation_card_shows_the_words_that_decide_each_emoji(champion):
    prepare, metrics = task(champion, "prepare").data, task(champion, "evaluate").data.metrics
    deciding = metrics["deciding_words"]
    test_words = {w for t in prepare.splits["test"].text for w in re.findall(r"\w+|[^\w\s]", t.lower())}
    assert deciding and all(n > 0 and word in test_words for words in deciding.values() for word, n in words)
    assert "the words that most often decide it" in card_json(champion, "evaluate", "evaluation")


def test_predict_answers_from_the_deployed_model(champion):
    out = subprocess.run([sys.executable, "-m", "emoji_reco.cli", "predict", "--json",
                          "monday again, really?"],
                         capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout)
    assert answer[0]["text"] == "monday again, really?"
    assert len(answer[0]["emojis"]) == 3 and all(a["emoji"] in demo.EMOJIS for a in answer[0]["emojis"])


def test_step_logs_carry_no_tensorflow_start_up_notices(champion):
    for step in ("convert", "train", "evaluate", "deploy"):  # the steps that load TensorFlow
        logs = "".join(t.stderr + t.stdout for t in champion[step])
        assert not [n for n in ("cuInit", "CUDA error", "oneDNN", "absl::InitializeLog")
                    if n in logs], (step, logs[-2000:])


def test_cards_show_the_data_and_the_confusion_matrix(champion):
    data_card = card_json(champion, "prepare", "data")
    assert "Dropped rows by reason" in data_card and "Class distribution per split" in data_card
    evaluation = card_json(champion, "evaluate", "evaluation")
    assert '"title": "Confusion matrix"' in evaluation and "Quality gate" in evaluation
    assert "The combined model and its parts" in evaluation and "n-gram TF-IDF" in evaluation
    assert all(e in evaluation for e in demo.EMOJIS)
    assert "Training curves" in card_json(champion, "train", "train")
    convert = card_json(champion, "join_convert", "convert")
    assert "Conversion to TFRecords" in convert and "records/s" in convert
    summary = card_json(champion, "end", "summary")
    assert "This flow's runs" in summary and champion.id in summary and "emoji-reco predict" in summary


def test_evaluate_scores_the_int8_form_and_keeps_its_verdict_in_the_bundle(champion):
    evaluation = task(champion, "evaluate").data.evaluation
    check, metrics = evaluation["int8"], evaluation["metrics"]
    assert check["top3_drop_points"] == round(100 * (metrics["top3"] - check["top3"]), 2)
    assert check["passed"] == (check["top3_drop_points"] <= 0.5)  # serve.max_int8_top3_drop's default
    served = LocalEndpoint("emoji-reco").current_dir()
    assert bundle.read_metadata(served)["int8_check"] == check  # where every server of it reads it
    card = card_json(champion, "evaluate", "evaluation")
    assert "The int8 form" in card and "int8 LiteRT" in card and check["reason"] in card


def test_a_run_serving_int8_smoke_tests_that_form_and_says_how_to_serve_it(tiny_model):
    config = tiny_flow_config(tiny_model, **{"deploy.endpoint": "int8-test", "serve.runtime": "int8",
                                             "serve.max_int8_top3_drop": 100.0})
    status, run, output = run_flow(config)
    assert status == "successful", output[-4000:]
    assert "int8 form may serve: top-3" in output
    deployment = task(run, "deploy").data.deployment
    assert deployment["deployed"]
    assert deployment["serve"] == "emoji-reco serve --endpoint int8-test --runtime int8"
    served = LocalEndpoint("int8-test").current_dir()
    assert bundle.Predictor(served, runtime="int8").runtime == "litert_int8"  # the gate let it serve


def test_a_candidate_that_fails_the_gate_deploys_nothing(champion, tiny_model, tmp_path):
    subprocess.run([sys.executable, "-m", "emoji_reco.cli", "demo-data", "--output", str(tmp_path), "--rows",
                    "500"],
                   check=True, capture_output=True)
    config = tiny_flow_config(tiny_model, **{"gate.min_score": 1.01})
    status, run, output = run_flow(config, data=str(tmp_path / "tweets.csv"), sample=300)
    assert status == "successful", output[-4000:]
    assert task(run, "prepare").data.data_report["rows_kept"] == 300
    verdict = task(run, "evaluate").data.verdict
    assert not verdict["passed"] and "below the minimum" in verdict["reasons"][0]
    assert task(run, "evaluate").data.evaluation["champion"]["version"] == champion.id
    assert registry.REJECTED in run.user_tags and registry.champion_tag("emoji-reco") not in run.user_tags
    assert registry.champion_tag("emoji-reco") in champion.user_tags
    assert not task(run, "deploy").data.deployment["deployed"]
    assert LocalEndpoint("emoji-reco").current_version() == champion.id
    assert task(run, "prepare").data.data_report["source"].endswith("tweets.csv")


def test_resume_after_a_failed_train_reuses_the_converted_shards(tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "tf_model.h5").rename(tmp_path / "weights.h5")  # train fails: no weights
    config = tiny_flow_config(model, **{"deploy.endpoint": "resume-test"})
    status, failed, output = run_flow(config)
    assert status == "failed" and "No weights in" in output
    records = task(failed, "join_convert").data.tfrecords
    mtimes = {r["uri"]: os.stat(r["uri"]).st_mtime_ns for r in records}

    (tmp_path / "weights.h5").rename(model / "tf_model.h5")
    status, resumed, output = run_flow(config, resume_from=failed.id)
    assert status == "successful", output[-4000:]
    for convert in resumed["convert"]:
        assert convert.origin_pathspec.startswith(f"EmojiFlow/{failed.id}/convert/")
    assert task(resumed, "join_convert").data.tfrecords == records
    assert {r["uri"]: os.stat(r["uri"]).st_mtime_ns for r in records} == mtimes  # not rewritten
    assert task(resumed, "deploy").data.deployment["deployed"]
    # Another endpoint's champion: the emoji-reco endpoint's champion keeps its tag.
    assert registry.champion_tag("resume-test") in resumed.user_tags
    assert [m["run"] for m in registry.models("EmojiFlow")
            if "champion:resume-test" in m["state"]] == [resumed.pathspec]


def test_a_missing_data_file_stops_the_run_with_one_clear_message(tiny_model, tmp_path):
    config = tiny_flow_config(tiny_model)
    status, _, output = run_flow(config, data=str(tmp_path / "nope.csv"))
    assert status == "failed"
    assert f"Data file not found: {tmp_path}/nope.csv" in output and "Traceback" not in output


def test_a_config_for_the_s3_datastore_stops_a_run_on_the_local_one_with_what_to_set(tiny_model, tmp_path):
    config = tiny_flow_config(tiny_model, **{"platform.datastore": "s3"})
    status, _, output = run_flow(config)
    assert status == "failed" and "Traceback" not in output
    assert "expects Metaflow's S3 datastore" in output and "metaflow configure aws" in output


def test_a_person_can_approve_a_rejected_run_and_deploy_it(tiny_model):
    import uuid

    from metaflow import Run

    endpoint = f"approved-{uuid.uuid4().hex[:6]}"
    config = tiny_flow_config(tiny_model, **{"gate.min_score": 1.01, "deploy.endpoint": endpoint})
    status, run, output = run_flow(config)
    assert status == "successful" and not task(run, "deploy").data.deployment["deployed"], output[-3000:]
    # DeployFlow serves approved runs only
    status, _, output = run_flow(config, flow=DEPLOY_FLOW, model=run.pathspec)
    assert status == "failed" and f"{run.pathspec} is not approved" in output and "Traceback" not in output
    approved = subprocess.run([sys.executable, "-m", "emoji_reco.cli", "models", "approve", run.pathspec,
                               "--deploy"],
                              capture_output=True, text=True, timeout=300)
    assert (approved.returncode == 0 and f"endpoint {endpoint} "
                                         f"now serves {run.id}" in approved.stdout), approved.stderr
    assert LocalEndpoint(endpoint).current_version() == run.id
    tags = Run(run.pathspec, _namespace_check=False).user_tags
    assert {registry.APPROVED, registry.champion_tag(endpoint)} <= set(tags) and registry.REJECTED not in tags

    # DeployFlow, as an approval event starts it on AWS, here with the local target: a second endpoint.
    second = f"{endpoint}-2"
    status, deploy_run, output = run_flow({**config, "deploy": {"endpoint": second}}, flow=DEPLOY_FLOW,
                                          model=run.pathspec)
    assert status == "successful", output[-3000:]
    assert (LocalEndpoint(second).current_version() == run.id
            and deploy_run["deploy"].task.data.deployment["deployed"])
    assert registry.champion_tag(second) in Run(run.pathspec, _namespace_check=False).user_tags
