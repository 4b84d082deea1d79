"""How a new version reaches a SageMaker endpoint's traffic, and how the endpoint grows with it.

- Traffic: the blue/green update shifts traffic as a canary (`CANARY`: `step_percent` of the new fleet's
  capacity first, the rest after `bake_seconds`), in steps (`LINEAR`), or all at once (`ALL_AT_ONCE`), from
  `sagemaker.endpoint.blue_green`.
- Alarms: the deploy creates two CloudWatch alarms on the endpoint's variant by default, its 5xx rate (percent
  of invocations over a minute) and its p99 model latency, and names them, with any the user names, in the
  update's `AutoRollbackConfiguration`: while traffic shifts, either alarm rolls the update back.
- Scaling: Application Auto Scaling target tracking on `SageMakerVariantInvocationsPerInstance`, between
  `min_instances` and `max_instances` (`sagemaker.endpoint.autoscaling`), registered after each successful
  deploy. Replacing the model of an autoscaled variant is allowed as it is; changing its instance type is not,
  so the deploy deregisters the variant first then (and registers it again after).
"""
import boto3

from emoji_reco.settings.sections import AutoscalingSettings, BlueGreenSettings

ROUTING = ("CANARY", "LINEAR", "ALL_AT_ONCE")


def traffic_routing(policy: BlueGreenSettings) -> dict:
    kind = policy.traffic.upper()
    if kind not in ROUTING:
        from emoji_reco.errors import ConfigError

        raise ConfigError(f"sagemaker.endpoint.blue_green.traffic is one of "
                          f"{', '.join(ROUTING)}, not {kind!r}.")
    routing = {"Type": kind, "WaitIntervalInSeconds": policy.bake_seconds}
    step = {"Type": "CAPACITY_PERCENT", "Value": policy.step_percent}
    if kind == "CANARY":
        routing["CanarySize"] = step
    elif kind == "LINEAR":
        routing["LinearStepSize"] = step
    return routing


def alarm_names(endpoint: str) -> list[str]:
    return [f"{endpoint}-5xx-rate", f"{endpoint}-p99-model-latency"]


def create_alarms(endpoint: str, variant: str, policy: BlueGreenSettings, cloudwatch=None) -> list[str]:
    """The default rollback alarms (created or updated in place); their names."""
    cloudwatch = cloudwatch or boto3.client("cloudwatch")
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]

    def metric(name: str, stat: str, period: int = 60) -> dict:
        return {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dimensions},
                "Period": period, "Stat": stat}

    errors, latency = alarm_names(endpoint)
    cloudwatch.put_metric_alarm(
        AlarmName=errors, AlarmDescription=f"{endpoint}: over {policy.max_5xx_percent}% of "
                                           f"invocations end in 5xx",
        Metrics=[{"Id": "errors", "MetricStat": metric("Invocation5XXErrors", "Sum"), "ReturnData": False},
                 {"Id": "calls", "MetricStat": metric("Invocations", "Sum"), "ReturnData": False},
                 {"Id": "rate", "Expression": "100 * errors / MAX([calls, 1])", "Label": "5xx percent",
                  "ReturnData": True}],
        ComparisonOperator="GreaterThanThreshold", Threshold=float(policy.max_5xx_percent),
        EvaluationPeriods=2,
        DatapointsToAlarm=2, TreatMissingData="notBreaching")
    cloudwatch.put_metric_alarm(
        AlarmName=latency, AlarmDescription=f"{endpoint}: p99 model latency over "
                                            f"{policy.max_p99_latency_ms} ms",
        Namespace="AWS/SageMaker", MetricName="ModelLatency", Dimensions=dimensions, ExtendedStatistic="p99",
        Period=60, EvaluationPeriods=2, DatapointsToAlarm=2, Unit="Microseconds",
        Threshold=1000.0 * policy.max_p99_latency_ms, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching")
    return [errors, latency]


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


SCALABLE = {"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}


def register_autoscaling(endpoint: str, variant: str, scaling: AutoscalingSettings, client=None) -> dict:
    """Target tracking on invocations per instance for the variant; what was registered."""
    client = client or boto3.client("application-autoscaling")
    target = {**SCALABLE, "ResourceId": resource_id(endpoint, variant)}
    client.register_scalable_target(**target, MinCapacity=scaling.min_instances,
                                    MaxCapacity=scaling.max_instances)
    policy = f"{endpoint}-invocations-per-instance"
    client.put_scaling_policy(**target, PolicyName=policy, PolicyType="TargetTrackingScaling",
                              TargetTrackingScalingPolicyConfiguration={
                                  "TargetValue": float(scaling.invocations_per_instance),
                                  "PredefinedMetricSpecification": {
                                      "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                                  "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
                                  "ScaleOutCooldown": scaling.scale_out_cooldown_seconds})
    return {"resource": target["ResourceId"], "policy": policy, "min": scaling.min_instances,
            "max": scaling.max_instances, "target": scaling.invocations_per_instance}


def deregister_autoscaling(endpoint: str, variant: str, client=None) -> None:
    """Before an update that changes the variant's instance type (which SageMaker refuses on a scaled
    variant)."""
    from botocore.exceptions import ClientError

    client = client or boto3.client("application-autoscaling")
    try:
        client.deregister_scalable_target(**SCALABLE, ResourceId=resource_id(endpoint, variant))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ObjectNotFoundException":
            raise
