"""MonitorFlow through the Runner on traffic a real server captured: the demo generator's texts are no drift
and start nothing; a skewed mix is drift, and the retrain request reaches moto's EventBridge once, matched by
the same rule that starts EmojiFlow when data lands in S3 (a probe queue on that rule receives it)."""
import json
import time
from pathlib import Path

import boto3
import pytest
from metaflow import Run

from emoji_reco.aws import event_rules
from emoji_reco.data import demo
from helpers.flows import MONITOR_FLOW, card_json, flow_config, run_flow, tiny_flow_config
from helpers.serving import metric, post, running, scrape, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def served(tiny_model):
    """A run's model, serving on an endpoint of this module's own; the run holds out 600 demo texts, the
    reference."""
    status, run, output = run_flow(tiny_flow_config(tiny_model, **{
        "demo.rows": 1500, "data.validation_fraction": 0.2, "data.test_fraction": 0.2,
        "deploy.endpoint": "monitor-test"}))
    assert status == "successful", output[-4000:]
    return Path(Run(run.pathspec).data.bundle_uri)


def capture_traffic(bundle: Path, folder: Path, texts: list[str]) -> None:
    """Send `texts` (ten a request) to a real server that captures every request into `folder`."""
    with running(model=str(bundle), capture_sample=1.0, capture_uri=str(folder),
                 capture_flush_seconds=0.2) as (url, _):
        wait_ready(url)
        for start in range(0, len(texts), 10):
            assert post(url, texts[start:start + 10]).status_code == 200
        deadline = time.time() + 30
        while metric(scrape(url), "emoji_reco_capture_records_total", outcome="written") < len(texts) // 10:
            assert time.time() < deadline
            time.sleep(0.2)


def monitor(folder: Path, **changes):
    config = flow_config(**{"deploy.endpoint": "monitor-test", "serve.capture.uri": str(folder), **changes})
    status, run, output = run_flow(config, flow=MONITOR_FLOW)
    assert status == "successful", output[-4000:]
    return run


def test_traffic_like_the_training_data_is_no_drift_and_starts_nothing(served, tmp_path):
    capture_traffic(served, tmp_path, demo.demo_tweets(rows=300, seed=99).TWEET.tolist())
    run = monitor(tmp_path)
    drift = run["compare"].task["drift"].data
    assert drift["texts"] == 300 and drift["verdict"] == "no drift", drift["features"]
    assert run["compare"].task["retrain"].data is None
    assert "no drift" in card_json(run, "compare", "drift")


def test_a_skewed_mix_is_drift_and_asks_once_for_retraining_through_the_retrain_rule(
        served, tmp_path, own_aws):
    _, bucket = own_aws
    events, sqs = boto3.client("events"), boto3.client("sqs")
    rule = event_rules.retrain(bucket, "incoming/")
    events.put_rule(Name="retrain-probe", EventPattern=json.dumps(rule.pattern))
    queue = sqs.create_queue(QueueName=f"probe-{bucket}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue,
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule="retrain-probe", Targets=[{"Id": "probe", "Arn": queue_arn}])

    tweets = demo.demo_tweets(rows=300, seed=99)
    fire = tweets[tweets.LABEL == "🔥"].TWEET.tolist()
    capture_traffic(served, tmp_path, tweets.TWEET.tolist() + fire * 9)  # one emoji's texts x10
    data = f"s3://{bucket}/incoming/tweets.csv"
    run = monitor(tmp_path, **{"monitor.retrain_event": "eventbridge", "monitor.retrain_data": data})
    drift, retrain = run["compare"].task["drift"].data, run["compare"].task["retrain"].data
    assert "emoji" in drift["drifted"] and retrain["event"] == "eventbridge" and retrain["data"] == data

    received = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                                    WaitTimeSeconds=2).get("Messages", [])]
    assert len(received) == 1 and received[0]["source"] == "emoji-reco.monitor"
    assert (received[0]["detail"]["bucket"]["name"], received[0]["detail"]["object"]["key"]) == (
        bucket, "incoming/tweets.csv")  # what the rule's transformer turns into EmojiFlow --data
    card = card_json(run, "compare", "drift")
    assert "drifted: " in card and "retraining asked for through eventbridge" in card
