"""The HTTP front: an AWS Lambda handler behind API Gateway that asks the SageMaker endpoint for emojis.

POST a tweet (text/plain), several (one per line), or JSON as the endpoint takes it; the answer is the
endpoint's (`{"version": ..., "predictions": [[{"emoji", "probability"}, ...]]}`). Bad bodies get a 4xx with
the reason; an endpoint failure a 502 with a generic message and the request id (SageMaker's own error text,
which names the account and its logs, goes to the function's log only). Standard library and boto3 only (the
Lambda runtime has both); `emoji-reco aws lambda-zip` packs it. The endpoint's name comes from $ENDPOINT_NAME.
"""
import base64
import json
import logging
import os
import uuid

import boto3

from emoji_reco.data.cleaning import is_empty
from emoji_reco.serving import payloads

MAX_TEXTS = int(os.environ.get("MAX_TEXTS", "64"))
log = logging.getLogger("emoji_reco.http_front")
log.setLevel(logging.INFO)
# What the Lambda package holds: this handler and what it imports.
MODULES = ("emoji_reco", "emoji_reco.quiet_tensorflow", "emoji_reco.data", "emoji_reco.data.cleaning",
           "emoji_reco.serving",
           "emoji_reco.serving.payloads", "emoji_reco.aws", "emoji_reco.aws.http_front")


def _reply(status: int, body: dict, request_id: str) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", "X-Request-Id": request_id},
            "body": json.dumps(body, ensure_ascii=False)}


def _refuse(status: int, message: str, request_id: str) -> dict:
    return _reply(status, {"error": message, "request_id": request_id}, request_id)


def handler(event: dict, context=None, runtime=None) -> dict:
    request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex[:16]
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    try:
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode()
        texts = payloads.parse_texts(body, headers.get("content-type"), MAX_TEXTS, is_empty)
    except payloads.BadRequest as exc:
        return _refuse(exc.status, str(exc), request_id)
    except ValueError:  # not base64
        return _refuse(400, "The body is not valid base64.", request_id)
    runtime = runtime or boto3.client("sagemaker-runtime")
    try:
        forward = {"instances": texts, "explain": True} if payloads.explain_requested(
            body, headers.get("content-type")) else texts
        answer = runtime.invoke_endpoint(EndpointName=os.environ["ENDPOINT_NAME"],
                                         ContentType="application/json",
                                         Accept="application/json", Body=json.dumps(forward).encode())
        raw_answer = answer["Body"].read()
        payloads.read_predictions(raw_answer)
    except (ValueError, runtime.exceptions.ClientError):
        log.exception("request %s: the model endpoint failed", request_id)
        return _refuse(502, "The model endpoint failed; try again later.", request_id)
    return _reply(200, json.loads(raw_answer), request_id)


def build_zip(zip_path: str) -> str:
    """The Lambda deployment package: this handler and what it imports, at their paths in the package."""
    import importlib
    import zipfile
    from pathlib import Path

    root = Path(importlib.import_module("emoji_reco").__file__).resolve().parent.parent
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as out:
        for name in MODULES:
            path = Path(importlib.import_module(name).__file__).resolve()
            out.write(path, path.relative_to(root).as_posix())
    return zip_path
