"""The HTTP front (the Lambda handler), its package and its template, against moto's sagemaker-runtime."""
import base64
import io
import json
import subprocess
import sys

import boto3
import pytest

from emoji_reco import cli
from emoji_reco.aws import http_front
from emoji_reco.data import demo
from helpers.flows import ROOT
from helpers.sagemaker_job import queue_answer, real_answer

pytestmark = pytest.mark.timeout(600)


def _http(body: str | bytes, content_type: str = "text/plain", b64: bool = False) -> dict:
    if b64:
        body = base64.b64encode(body if isinstance(body, bytes) else body.encode()).decode()
    return {"headers": {"Content-Type": content_type}, "body": body, "isBase64Encoded": b64}


def test_the_http_front_answers_a_tweet_from_the_endpoint(aws, moto_server, tiny_bundle, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", "shop-front")
    runtime, sent = boto3.client("sagemaker-runtime"), []
    runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint",
                                 lambda request, **_: sent.append(
        (request.method, request.url, {k: v for k, v in request.headers.items()}, request.body)))
    queue_answer(moto_server, real_answer(tiny_bundle, ["monday again"]))
    reply = http_front.handler(_http("monday again"), runtime=runtime)
    assert reply["statusCode"] == 200
    (answer,) = json.loads(reply["body"])["predictions"]
    assert len(answer) == 3 and answer[0]["emoji"] in demo.EMOJIS
    queue_answer(moto_server, real_answer(tiny_bundle, ["a", "b"]))
    reply = http_front.handler(_http(json.dumps(["a", "b"]).encode(), "application/json", b64=True),
                               runtime=runtime)
    assert reply["statusCode"] == 200 and len(json.loads(reply["body"])["predictions"]) == 2
    # What went over the wire to SageMaker: the endpoint named by $ENDPOINT_NAME, JSON both ways, the texts as
    # a list.
    assert [(method, url.split("/", 3)[-1]) for method, url, _, _ in sent] == [
        ("POST", "endpoints/shop-front/invocations")] * 2
    assert all(headers["Content-Type"] == b"application/json" and headers["Accept"] == b"application/json"
               for _, _, headers, _ in sent)
    assert [json.loads(body) for *_, body in sent] == [["monday again"], ["a", "b"]]


@pytest.mark.parametrize("event, status, reason", [
    (_http(""), 400, "No texts"),
    (_http("{not json", "application/json"), 400, "JSON"),
    (_http("<xml/>", "application/xml"), 415, "Unsupported content type"),
    (_http("\n".join(["t"] * 65)), 400, "at most 64"),
    (_http(json.dumps({"instances": ["fine", "   "]}), "application/json"), 400, "instances[1] is empty"),
])
def test_the_http_front_refuses_bad_bodies_with_the_reason(aws, monkeypatch, event, status, reason):
    monkeypatch.setenv("ENDPOINT_NAME", "emoji-reco")
    reply = http_front.handler(event)
    assert reply["statusCode"] == status and reason in json.loads(reply["body"])["error"]


def test_the_http_front_passes_explain_through_to_the_endpoint(monkeypatch):
    """A double of sagemaker-runtime records what the front sends (the endpoint's side is tested in
    test_server)."""
    monkeypatch.setenv("ENDPOINT_NAME", "emoji-reco")
    sent = []

    class Runtime:
        exceptions = boto3.client("sagemaker-runtime", region_name="us-east-1").exceptions

        def invoke_endpoint(self, **request):
            sent.append(json.loads(request["Body"]))
            return {"Body": io.BytesIO(json.dumps({"version": "1",
                                                   "predictions": [[{"emoji": "🔥", "probability": 1.0}]],
                                                   "explanations": [{"emojis": []}]}).encode())}

    asked = http_front.handler(_http(json.dumps({"instances": ["lit"], "explain": True}), "application/json"),
                               runtime=Runtime())
    plain = http_front.handler(_http("lit"), runtime=Runtime())
    assert sent == [{"instances": ["lit"], "explain": True}, ["lit"]]
    assert "explanations" in json.loads(asked["body"]) and asked["statusCode"] == plain["statusCode"] == 200


def test_the_http_front_reports_an_endpoint_failure_as_502(aws, moto_server, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", "emoji-reco")
    queue_answer(moto_server, b"<html>oops</html>")
    reply = http_front.handler(_http("is anyone there"))
    body = json.loads(reply["body"])
    assert reply["statusCode"] == 502 and "model endpoint failed" in body["error"]
    # detail: log only
    assert "oops" not in reply["body"] and body["request_id"] == reply["headers"]["X-Request-Id"]


def test_the_lambda_package_holds_the_handler_and_what_it_imports(tmp_path):
    import zipfile

    assert cli.main(["aws", "lambda-zip", "--output", str(tmp_path / "front.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "front.zip") as z:
        z.extractall(tmp_path / "front")
    probe = ("import sys, emoji_reco.aws.http_front as h; "
             "print(h.handler({'body': '', 'headers': {}})['statusCode']); "
             "print(sorted(m for m in sys.modules if m.startswith('emoji_reco')))")
    done = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = "
                                                       f"['{tmp_path / 'front'}'] + "
                           f"{[p for p in sys.path if 'site-packages' in p]!r}; " + probe],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status, modules = done.stdout.splitlines()
    assert status == "400" and modules == str(sorted(http_front.MODULES))


def test_the_http_front_template_throttles_names_its_origins_and_requires_auth_by_default():
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(ROOT / "deploy" / "http-front.yaml"))
    params, resources = template["Parameters"], template["Resources"]
    # refused
    assert "Default" not in params["AllowedOrigins"] and "*" in params["AllowedOrigins"]["AllowedPattern"]
    assert resources["Api"]["Properties"]["CorsConfiguration"]["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    throttling = resources["Stage"]["Properties"]["DefaultRouteSettings"]
    assert throttling == {"ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
                          "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"}}
    assert params["Auth"]["Default"] == "AWS_IAM" and set(params["Auth"]["AllowedValues"]) == {"AWS_IAM",
                                                                                               "JWT", "NONE"}
    assert resources["Route"]["Properties"]["AuthorizationType"] == {"Ref": "Auth"}
    assert (resources["Authorizer"]["Condition"] == "UseJwt"
            and resources["Authorizer"]["Properties"]["AuthorizerType"] == "JWT")
    import re

    pattern = re.compile(params["AllowedOrigins"]["AllowedPattern"])
    assert pattern.fullmatch("https://app.example.com") and not pattern.fullmatch("*")
    assert not pattern.fullmatch("https://*.example.com") and not pattern.fullmatch("https://a.com/path")
