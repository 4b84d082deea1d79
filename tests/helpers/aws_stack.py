"""What a Metaflow AWS stack provides (roles, Batch queue, DynamoDB table, bucket), created in moto."""
import json

import boto3

TF_INFERENCE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference"


def metaflow_aws_stack(bucket: str) -> dict:
    """Create the stack's resources; return the METAFLOW_* variables that point a deployment at them."""
    iam, ec2, batch = boto3.client("iam"), boto3.client("ec2"), boto3.client("batch")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    roles = {name: iam.create_role(RoleName=f"{name}-{bucket}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
             for name in ("sfn", "batch-s3", "events", "batch-service")}
    profile = iam.create_instance_profile(InstanceProfileName=f"ecs-{bucket}")["InstanceProfile"]["Arn"]
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"ce-{bucket}", type="MANAGED", serviceRole=roles["batch-service"],
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 16, "instanceTypes": ["optimal"],
                          "subnets": [ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
                          "securityGroupIds": [
                              ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]],
                          "instanceRole": profile})
    batch.create_job_queue(jobQueueName=f"queue-{bucket}", state="ENABLED", priority=1,
                           computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}])
    boto3.client("dynamodb").create_table(
        TableName=f"sfn-{bucket}", KeySchema=[{"AttributeName": "pathspec", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pathspec", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    boto3.client("s3").create_bucket(Bucket=bucket)
    return {"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/metaflow",
            "METAFLOW_SFN_IAM_ROLE": roles["sfn"], "METAFLOW_ECS_S3_ACCESS_IAM_ROLE": roles["batch-s3"],
            "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": roles["events"],
            "METAFLOW_BATCH_JOB_QUEUE": f"queue-{bucket}",
            "METAFLOW_SFN_DYNAMO_DB_TABLE": f"sfn-{bucket}"}


def sagemaker_event(group: str, version: int, status: str, detail_type: str = "SageMaker Model "
                                                                              "Package State Change",
                    region: str = "us-east-1", account: str = "123456789012") -> dict:
    """A "SageMaker Model Package State Change" event in the shape of SageMaker's documented example
    (docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html, model package state
    change)."""
    arn = f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/{version}"
    return {"version": "0", "id": f"844e2571-85d4-695f-b930-0153b71dcb{version:02d}",
            "detail-type": detail_type,
            "source": "aws.sagemaker", "account": account, "time": "2026-11-23T17:00:14Z", "region": region,
            "resources": [arn],
            "detail": {"ModelPackageGroupName": group, "ModelPackageVersion": version, "ModelPackageArn": arn,
                       "ModelPackageName": group, "CreationTime": 1614185949982,
                       "ModelApprovalStatus": status,
                       "ModelPackageStatus": "Completed", "CreatedBy": {},
                       "InferenceSpecification": {
                           "Containers": [{"Image": f"{TF_INFERENCE}:2.16-cpu",
                                           "ModelDataUrl": "s3://bucket/model.tar.gz"}],
                           "SupportedContentTypes": ["application/json"],
                           "SupportedResponseMIMETypes": ["application/json"]}}}


def replay_through_rule(rule_name: str, events: list[dict]) -> list[dict]:
    """What the rule's target would receive for `events`: moto delivers neither to a state machine target nor
    through input transformers on the default bus, so the rule's pattern and its target's transformer (both
    read back from moto) are put on a probe bus with a probe queue, and the events replayed there."""
    import uuid

    bus, sqs = boto3.client("events"), boto3.client("sqs")
    pattern = bus.describe_rule(Name=rule_name)["EventPattern"]
    (target,) = bus.list_targets_by_rule(Rule=rule_name)["Targets"]
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    queue = sqs.create_queue(QueueName=probe)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue,
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus.create_event_bus(Name=probe)
    bus.put_rule(Name=probe, EventBusName=probe, EventPattern=pattern)
    bus.put_targets(Rule=probe, EventBusName=probe, Targets=[
        {"Id": "probe", "Arn": queue_arn, "InputTransformer": target["InputTransformer"]}])
    bus.put_events(Entries=[{"Source": e["source"], "DetailType": e["detail-type"],
                             "Detail": json.dumps(e["detail"]),
                             "Resources": e.get("resources", []), "EventBusName": probe} for e in events])
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=2).get("Messages", [])
    bus.remove_targets(Rule=probe, EventBusName=probe, Ids=["probe"])
    bus.delete_rule(Name=probe, EventBusName=probe)
    bus.delete_event_bus(Name=probe)
    return [json.loads(m["Body"]) for m in messages]
