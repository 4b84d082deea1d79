"""Model versions in the SageMaker Model Registry: one model package group, one package per evaluated
candidate.

The quality gate sets the approval: passed → `Approved` (`sagemaker.registry.approval` "auto") or
`PendingManualApproval` ("manual", a human approves with `emoji-reco models approve`); failed → `Rejected`.
Deploying takes the newest approved package.
"""
import json

import boto3

from emoji_reco import storage
from emoji_reco.errors import EmojiRecoError
from emoji_reco.settings import Settings

APPROVED, PENDING, REJECTED = "Approved", "PendingManualApproval", "Rejected"
CONTENT_TYPES = ["application/json", "text/plain", "text/csv"]


def approval_for(verdict: dict, mode: str) -> str:
    if not verdict["passed"]:
        return REJECTED
    return {"auto": APPROVED, "manual": PENDING}[mode]


def ensure_group(client, group: str) -> None:
    try:
        client.describe_model_package_group(ModelPackageGroupName=group)
    except client.exceptions.ClientError:
        client.create_model_package_group(ModelPackageGroupName=group,
                                          ModelPackageGroupDescription="emoji-reco: "
                                                                       "EmojiFlow's evaluated models")


def register(model: dict, settings: Settings, run: str, metrics: dict, verdict: dict, run_root: str) -> dict:
    """A new package version for `model` (image, model_data, version) with its metrics and the gate's
    approval."""
    client, group = boto3.client("sagemaker"), settings.sagemaker.registry.group
    ensure_group(client, group)
    statistics = storage.join(run_root, "sagemaker", "evaluation.json")
    storage.put_bytes(json.dumps({"metrics": metrics, "verdict": verdict}).encode(), statistics)
    status = approval_for(verdict, settings.sagemaker.registry.approval)
    arn = client.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=status,
        ModelPackageDescription=f"{run}: top-1 {metrics['top1']:.4f}; gate: "
                                f"{'; '.join(verdict['reasons'])}"[:1000],
        InferenceSpecification={"Containers": [{"Image": model["image"],
                                                "ModelDataUrl": model["model_data"]}],
                                "SupportedContentTypes": CONTENT_TYPES,
                                "SupportedResponseMIMETypes": ["application/json"]},
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                      "S3Uri": statistics}}},
        CustomerMetadataProperties={"run": run, "version": model["version"],
                                    "bundle_uri": model["bundle_uri"],
                                    **{k: f"{metrics[k]:.4f}" for k in ("top1", "top3", "macro_f1")}},
    )["ModelPackageArn"]
    return {"arn": arn, "status": status, "group": group, **model}


def _entry(client, summary: dict) -> dict:
    package = client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    container = package["InferenceSpecification"]["Containers"][0]
    props = package.get("CustomerMetadataProperties", {})
    return {"arn": package["ModelPackageArn"], "package_version": package.get("ModelPackageVersion"),
            "group": package.get("ModelPackageGroupName"),
            "status": package["ModelApprovalStatus"],
            "created_at": package["CreationTime"].isoformat(timespec="seconds"),
            "image": container["Image"], "model_data": container["ModelDataUrl"], **props}


def versions(group: str, status: str | None = None) -> list[dict]:
    """The group's packages, newest first (optionally only those with approval `status`)."""
    client = boto3.client("sagemaker")
    query = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        query["ModelApprovalStatus"] = status
    summaries = [s for page in client.get_paginator("list_model_packages").paginate(**query)
                 for s in page["ModelPackageSummaryList"]]
    return [_entry(client, s) for s in summaries]


def newest_approved(group: str) -> dict | None:
    approved = versions(group, APPROVED)
    return approved[0] if approved else None


def _arn(package: str, group: str | None) -> str:
    """A package's ARN, given its ARN or, with `group`, its version number."""
    if package.startswith("arn:"):
        return package
    matches = [v["arn"] for v in versions(group) if str(v["package_version"])
               == str(package)] if group else []
    if not matches:
        raise EmojiRecoError(f"No version {package} in model package group {group!r}.")
    return matches[0]


def approved(group: str, package: str) -> dict:
    """An Approved package of `group` (by ARN or version number), or its newest approved one for "newest"."""
    if package == "newest":
        entry = newest_approved(group)
        if entry is None:
            raise EmojiRecoError(f"No approved version in model package group {group!r}.")
        return entry
    client = boto3.client("sagemaker")
    arn = _arn(package, group)
    entry = _entry(client, {"ModelPackageArn": arn})
    if entry["group"] != group:
        raise EmojiRecoError(f"{arn} belongs to model package group {entry['group']!r}, not {group!r}.")
    if entry["status"] != APPROVED:
        raise EmojiRecoError(f"{arn} is {entry['status']}, not {APPROVED}: approve it before deploying it.")
    return entry


def set_status(package: str, status: str, group: str | None = None, note: str = "") -> dict:
    """Approve or reject a package, given by ARN or, with `group`, by version number."""
    client = boto3.client("sagemaker")
    arn = _arn(package, group)
    # Re-sending the package's own properties changes nothing on AWS, and keeps them where an update drops
    # them (moto).
    properties = client.describe_model_package(ModelPackageName=arn).get("CustomerMetadataProperties") or {}
    client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status,
                                CustomerMetadataProperties=properties,
                                ApprovalDescription=note or f"set to {status} with emoji-reco")
    return {"arn": arn, "status": status}
