"""EmojiFlow on Kubernetes with Argo Workflows (config/kubernetes.json), compiled without a cluster:
`argo-workflows create --only-json` against moto's S3 (for the code package) on 127.0.0.1. What Argo and Argo
Events would do with the WorkflowTemplate and the Sensor is not exercised here."""
import json
import os
import subprocess
import sys

import pytest

from emoji_reco.settings import parse
from helpers.flows import DEPLOY_FLOW, FLOW, MONITOR_FLOW, ROOT

pytestmark = pytest.mark.timeout(300)
CONFIG = parse(json.dumps({"extends": "kubernetes.json"}))
# `--only-json` prints the WorkflowTemplate only; this also prints the Sensor and the schedule Metaflow
# compiled.
COMPILE = """import json, os, runpy, sys
from metaflow.plugins.argo.argo_workflows import ArgoWorkflows
ArgoWorkflows.__str__ = lambda self: json.dumps({"template": self._workflow_template.to_json(),
                                                 "sensor": self._sensor and self._sensor.to_json(),
                                                 "schedule": self._schedule})
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))  # as `python FLOW` does
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _compile(flow: str, moto_server: str) -> dict:
    """The flow compiled for Argo with config/kubernetes.json: {"template", "sensor", "schedule"}."""
    import os
    import uuid

    import boto3

    bucket = f"emoji-argo-{uuid.uuid4().hex[:8]}"
    aws = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    boto3.client("s3", **{"endpoint_url": moto_server, "region_name": "us-east-1",
                          "aws_access_key_id": "testing",
                          "aws_secret_access_key": "testing"}).create_bucket(Bucket=bucket)
    env = {**os.environ, **aws, "METAFLOW_DEFAULT_DATASTORE": "s3",
           "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/mf",
           "METAFLOW_KUBERNETES_NAMESPACE": "emoji-reco", "METAFLOW_ARGO_EVENTS_EVENT": "metaflow-event",
           "METAFLOW_ARGO_EVENTS_EVENT_BUS": "default",
           "METAFLOW_ARGO_EVENTS_EVENT_SOURCE": "metaflow-webhook",
           "METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT": "operate-workflow-sa"}
    done = subprocess.run([sys.executable, "-c", COMPILE, flow, "--config", "config",
                           str(ROOT / "config" / "kubernetes.json"),
                           "--production", "argo-workflows", "create", "--only-json"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def compiled(moto_server):
    return _compile(FLOW, moto_server)


def _templates(compiled) -> dict:
    return {t["name"]: t for t in compiled["template"]["spec"]["templates"]}


def test_the_workflow_template_fans_convert_out_over_the_shards(compiled):
    template = compiled["template"]
    assert (template["kind"] == "WorkflowTemplate" and template["metadata"]["name"]
            == "emojireco.prod.emojiflow")
    dag = {t["name"]: t for t in _templates(compiled)["EmojiFlow"]["dag"]["tasks"]}
    assert set(dag) >= {"start", "prepare", "join-convert", "train", "evaluate", "register", "deploy", "end"}
    fan_out = dag["prepare-foreach-shards"]
    assert fan_out["withParam"] == "{{tasks.prepare.outputs.parameters.num-splits}}"  # one convert per shard
    assert ([t["template"] for t in _templates(compiled)["prepare-foreach-shards"]["dag"]["tasks"]]
            == ["convert"])
    assert (dag["train"]["depends"] == "join-convert.Succeeded" and dag["deploy"]["depends"]
            == "register.Succeeded")


def test_each_step_gets_the_configs_resources_retries_and_timeout(compiled):
    templates, platform = _templates(compiled), CONFIG["platform"]
    for step, section in (("convert", "convert"), ("train", "train")):
        requests = templates[step]["container"]["resources"]["requests"]
        assert float(requests["cpu"]) == CONFIG[section]["cpu"]
        assert float(requests["memory"].rstrip("M")) == CONFIG[section]["memory_mb"]
    for step in ("prepare", "convert", "join-convert", "train", "evaluate", "register", "deploy", "end"):
        assert templates[step]["retryStrategy"]["limit"] == platform["retries"], step
        assert (templates[step]["activeDeadlineSeconds"] == 60
                * platform["timeout_minutes"][step.replace("-", "_")]), step


def test_it_runs_weekly_and_when_new_data_is_announced_with_the_events_data_as_the_data_parameter(compiled):
    assert compiled["schedule"] == "0 0 ? * SUN"  # @schedule(weekly=True), from config/aws.json
    sensor = compiled["sensor"]
    (dependency,) = sensor["spec"]["dependencies"]
    assert dependency["eventName"] == "metaflow-event" and dependency["eventSourceName"] == "metaflow-webhook"
    (expression,) = dependency["filters"]["exprs"]
    assert expression["expr"] == f"name == '{CONFIG['platform']['trigger']['event']['name']}'"
    (trigger,) = sensor["spec"]["triggers"]
    workflow = trigger["template"]["k8s"]["source"]["resource"]
    assert workflow["spec"]["workflowTemplateRef"]["name"] == compiled["template"]["metadata"]["name"]
    to_data = [p for p in trigger["template"]["k8s"]["parameters"] if p["dest"].endswith("(name=data).value")]
    (mapping,) = to_data
    assert '$.Input.body.payload "data"' in mapping["src"]["dataTemplate"]  # the event's `data` → --data


def test_deploy_flow_compiles_without_a_schedule_or_a_trigger(moto_server):
    compiled = _compile(DEPLOY_FLOW, moto_server)
    assert compiled["template"]["metadata"]["name"] == "emojireco.prod.deployflow"
    assert compiled["schedule"] is None and not compiled["sensor"]  # it trains nothing: approvals start it
    templates = _templates(compiled)
    assert set(templates) >= {"start", "deploy", "end"}
    for step in ("deploy", "end"):  # BaseFlow's placement reaches a flow's own steps, by the flow's own names
        assert templates[step]["retryStrategy"]["limit"] == CONFIG["platform"]["retries"], step


def test_monitor_flow_runs_daily_and_asks_for_retraining_through_emoji_flows_trigger(moto_server):
    compiled = _compile(MONITOR_FLOW, moto_server)
    # @schedule(daily=True): monitor.schedule
    assert compiled["schedule"] == "0 0 * * ?" and not compiled["sensor"]
    assert CONFIG["monitor"]["retrain_event"] == "argo" and CONFIG["platform"]["trigger"]["event"]["name"]


def test_the_multinode_flow_trains_on_a_jobset_of_as_many_pods_as_the_run_asks(moto_server):
    """MultiNodeEmojiFlow's `@parallel` train step with `@kubernetes` becomes a JobSet (one control pod, the
    rest workers) whose size the run's `start_workers` step outputs; every other step is EmojiFlow's."""
    compiled = _compile(str(ROOT / "flows" / "multinode_flow.py"), moto_server)
    templates = _templates(compiled)
    dag = {t["name"]: t for t in templates["MultiNodeEmojiFlow"]["dag"]["tasks"]}
    assert set(dag) >= {"prepare", "join-convert", "start-workers", "join-train", "evaluate", "deploy"}
    jobset = templates["train"]["resource"]["manifest"]  # YAML
    assert "kind: JobSet" in jobset and "- name: control" in jobset and "- name: worker" in jobset
    assert "num_parallel: '{{inputs.parameters.num-parallel}}'" in jobset
    assert dag["evaluate"]["depends"].startswith("join-train")


def test_score_flow_scores_its_shards_on_kubernetes_as_training_runs_there(moto_server):
    """The same `platform` config places ScoreFlow's `score` step: one pod per shard, with `score`'s
    resources."""
    templates = _templates(_compile(str(ROOT / "flows" / "score_flow.py"), moto_server))
    dag = {t["name"]: t for t in templates["ScoreFlow"]["dag"]["tasks"]}
    assert dag["start-foreach-shards"]["withParam"] == "{{tasks.start.outputs.parameters.num-splits}}"
    requests = templates["score"]["container"]["resources"]["requests"]
    assert float(requests["cpu"]) == CONFIG["score"]["cpu"]
    assert float(requests["memory"].rstrip("M")) == CONFIG["score"]["memory_mb"]
    assert templates["score"]["activeDeadlineSeconds"] == 60 * CONFIG["platform"]["timeout_minutes"]["score"]


def test_monitor_flows_retrain_request_reaches_the_argo_events_webhook_as_emoji_flows_trigger_event():
    """The "argo" retrain event, published as MonitorFlow publishes it, to a webhook on 127.0.0.1 standing in
    for Argo Events' (what the Sensor then does is not exercised here)."""
    import http.server
    import threading

    received = []

    class Webhook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    publish = ("import json; from emoji_reco.settings import parse, typed; from "
               "emoji_reco.monitoring import retrain; "
               "print(json.dumps(retrain.request(typed(parse(json.dumps({'extends': 'kubernetes.json'}))), "
               "'s3://bucket/tweets.csv', 'drift in emoji')))")
    try:
        done = subprocess.run([sys.executable, "-c", publish], capture_output=True, text=True, timeout=120,
                              env={
            **os.environ, "METAFLOW_ARGO_EVENTS_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/"})
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-2000:]
    (event,) = received
    name = CONFIG["platform"]["trigger"]["event"]["name"]
    assert event["name"] == event["payload"]["name"] == name == json.loads(done.stdout)["name"]
    assert event["payload"]["data"] == "s3://bucket/tweets.csv"  # the trigger maps it to EmojiFlow's --data
