"""Asking for a retraining run, through the event that already starts one (`monitor.retrain_event`):

- "eventbridge" (Step Functions on AWS): an event on the default bus shaped as S3's "Object Created" for the
  data to retrain on, from source `emoji-reco.monitor`; the retrain rule (`emoji-reco aws wire-retrain`,
  deploy/retrain-on-upload.yaml) matches it beside S3's own and starts EmojiFlow `--data s3://bucket/key`;
- "argo": the `platform.trigger` event (`emoji-reco-new-data`) with the data as its `data` parameter, posted
  to the Argo Events webhook ($METAFLOW_ARGO_EVENTS_WEBHOOK_URL) by Metaflow's ArgoEvent;
- "none": nothing starts; the monitor's card says what to run.
"""
import json

from emoji_reco import storage
from emoji_reco.aws.event_rules import MONITOR_SOURCE
from emoji_reco.errors import ConfigError
from emoji_reco.settings import Settings

DETAIL_TYPE = "Object Created"  # what the retrain rule matches, from S3 or from us


def _bucket_key(data: str) -> tuple[str, str]:
    if not storage.is_s3(data):
        raise ConfigError(f"Retraining through EventBridge needs the data as an s3:// "
                          f"object, not {data!r}: set "
                          "monitor.retrain_data.")
    bucket, _, key = data.removeprefix("s3://").partition("/")
    return bucket, key


def request(settings: Settings, data: str, reason: str) -> dict:
    """Publish the retrain event `monitor.retrain_event` names, for `data`; what was published, for the
    card."""
    kind = settings.monitor.retrain_event
    if kind == "eventbridge":
        import boto3

        bucket, key = _bucket_key(data)
        detail = {"bucket": {"name": bucket}, "object": {"key": key}, "reason": reason}
        answer = boto3.client("events").put_events(Entries=[{
            "Source": MONITOR_SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail)}])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the retrain event: {answer['Entries']}")
        return {"event": "eventbridge", "id": answer["Entries"][0]["EventId"], "data": data}
    if kind == "argo":
        from metaflow.integrations import ArgoEvent

        trigger = (settings.platform.trigger or {}).get("event") or {}
        if not trigger.get("name"):
            raise ConfigError("monitor.retrain_event is argo, but platform.trigger names no event.")
        event_id = ArgoEvent(trigger["name"]).publish(payload={"data": data, "reason": reason},
                                                      ignore_errors=False)
        return {"event": "argo", "name": trigger["name"], "id": event_id, "data": data}
    if kind != "none":
        raise ConfigError(f"monitor.retrain_event is eventbridge, argo or none, not {kind!r}.")
    from emoji_reco.data.dataset import DEMO_SOURCE

    own_data = data and data != DEMO_SOURCE
    return {"event": None, "data": data, "run": "python flows/emoji_flow.py run"
            + (f" --data {data}" if own_data else "")}
