"""The seam between local and AWS: every registered trainer and target against the contract in
`emoji_reco/backends/contract.py`, in signature and in behaviour (real TensorFlow training, a real local
endpoint, moto's SageMaker); and the flow's steps never ask which backend they have."""
import ast
import inspect
import json
import uuid

import pytest

from emoji_reco import backends, storage
from emoji_reco.backends import contract
from emoji_reco.backends.contract import Approved, Deployment, ModelVersion, RunInfo, Training, TrainingData
from emoji_reco.backends.sagemaker import SageMakerTarget
from emoji_reco.errors import ConfigError
from helpers.config import typed_settings
from helpers.flows import FLOW, gated_run
from helpers.sagemaker_job import queue_answer
from helpers.sagemaker_job import settings as sagemaker_settings

PASSED = {"passed": True, "reasons": ["top1 above the minimum"]}
METRICS = {"top1": 0.5, "top3": 0.8, "macro_f1": 0.4}


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize(("table", "protocol"), [(backends.TRAINERS, contract.Trainer),
                                                  (backends.TARGETS, contract.Target)])
def test_every_registered_backend_has_every_method_of_its_contract_with_its_parameters(table, protocol):
    methods = [name for name, _ in inspect.getmembers(protocol, inspect.isfunction)
               if not name.startswith("_")]
    settings = typed_settings(**{"train.backend": "sagemaker", "deploy.target": "sagemaker"})
    for path in table.values():
        cls = backends.load(path)
        assert isinstance(cls(settings), protocol), path
        for name in methods:
            assert _parameters(getattr(cls, name)) == _parameters(getattr(protocol, name)), (path, name)


def test_the_config_picks_the_trainer_and_the_target_without_importing_the_others():
    import subprocess
    import sys

    probe = ("import sys; from emoji_reco import backends, settings; s = "
             "settings.typed(settings.defaults()); "
             "print(type(backends.trainer(s)).__name__, type(backends.target(s)).__name__, "
             "'emoji_reco.backends.sagemaker' in sys.modules, 'emoji_reco.aws.training_job' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["LocalTrainer", "LocalTarget", "False", "False"], done.stderr[-2000:]
    with pytest.raises(ConfigError, match="deploy.target: 'kubernetes' is not one of 'local', 'sagemaker'"):
        backends.target(typed_settings(**{"deploy.target": "kubernetes"}))


def test_results_are_kept_as_the_plain_dicts_runs_always_kept():
    deployment = Deployment.of({"deployed": True, "version": "7", "path": "/x", "smoke": [],
                                "endpoint_config": "c"})
    assert deployment.details == {"endpoint_config": "c"}
    assert deployment.as_dict() == {"deployed": True, "version": "7", "path": "/x", "smoke": [],
                                    "endpoint_config": "c"}
    assert Deployment(deployed=False, reason="gate").as_dict() == {"deployed": False, "reason": "gate"}
    training = Training.of({"bundle_uri": "u", "history": [], "steps": [], "seconds": 1.0,
                            "examples_per_second": None, "ensemble": None, "sagemaker": {"job_name": "j"}})
    assert (training.as_dict()["examples_per_second"] is None and training.as_dict()["sagemaker"]
            == {"job_name": "j"})


def _shards(tmp_path, model_dir):
    from emoji_reco.data import dataset
    from emoji_reco.model import tfrecords

    config = typed_settings(**{"demo.rows": 400})
    prepared = dataset.prepare(config.data, config.demo)
    return tfrecords.convert_shard(prepared.splits, 0, 1, model_dir, 32, 256,
                                   str(tmp_path / "records")), prepared.emojis


QUICK_TRAINING = {"model.max_length": 32, "model.ngram.buckets": 4096, "train.epochs": 1,
                  "train.batch_size": 16,
                  "train.learning_rate": 1e-3, "train.bucket_boundaries": [8, 16]}


def _check_training(training, on_update_calls, emojis, tmp_path):
    from emoji_reco.model import bundle

    assert isinstance(training, Training) and training.history and on_update_calls
    assert on_update_calls[-1][0] == training.history  # the last update saw every epoch
    local = storage.get_dir(training.bundle_uri, str(tmp_path / "fetched"))
    assert bundle.Predictor(local).logits(["does it load"]).shape == (1, len(emojis))
    return bundle.read_metadata(local)


@pytest.mark.slow
def test_the_local_trainer_honours_the_contract(tmp_path, tiny_model):
    shards, emojis = _shards(tmp_path, tiny_model)
    settings = typed_settings(**{"model.base": str(tiny_model), **QUICK_TRAINING})
    run = RunInfo("EmojiFlow/1", "1", str(tmp_path / "run"), str(tmp_path))
    updates = []
    training = backends.trainer(settings).train(run, TrainingData(shards, emojis, "tweets.csv"),
                                                on_update=lambda h, s: updates.append((list(h), list(s))))
    metadata = _check_training(training, updates, emojis, tmp_path)
    assert training.bundle_uri == str(tmp_path / "run" / "model")
    assert (metadata["run"], metadata["data"]) == ("EmojiFlow/1", "tweets.csv")


def test_the_sagemaker_trainer_honours_the_contract(aws, tmp_path, tiny_model, tiny_bundle):
    """Moto completes the job at once and writes no model: the model the job would write is put where
    SageMaker puts it. What this proves: the job reads exactly the shards it is given, and the step's result,
    bundle and progress follow the contract."""
    import boto3

    from emoji_reco.aws import training_job
    from emoji_reco.serving import sources


    _, bucket = aws
    run_root = f"s3://{bucket}/metaflow/EmojiFlow/5/emoji_reco"
    local_shards, emojis = _shards(tmp_path, tiny_model)
    shards = [{**shard,
               "uri": f"{run_root}/tfrecords/{shard['uri'].rsplit('/', 1)[1]}"} for shard in local_shards]
    for local, shard in zip(local_shards, shards):
        storage.put_file(local["uri"], shard["uri"])
    name = training_job.job_name("5", 0)
    storage.put_file(str(sources.make_tarball(tiny_bundle[1], tmp_path / "model.tar.gz")),
                     f"{run_root}/sagemaker/{name}/output/model.tar.gz")
    settings = sagemaker_settings(**{"model.base": str(tiny_model), **QUICK_TRAINING})
    run = RunInfo("EmojiFlow/5", "5", run_root, f"s3://{bucket}/metaflow")
    updates = []
    training = backends.trainer(settings).train(run, TrainingData(shards, emojis, "tweets.csv"),
                                                on_update=lambda h, s: updates.append((h, s)))
    assert isinstance(training, Training) and updates == [(training.history, training.steps)]
    assert training.details["sagemaker"]["job_name"] == name and training.bundle_uri == f"{run_root}/model"
    from emoji_reco.model import bundle

    fetched = storage.get_dir(training.bundle_uri, str(tmp_path / "fetched"))
    assert bundle.Predictor(fetched).logits(["does it load"]).shape == (1, len(emojis))
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in described["InputDataConfig"]}
    assert channels == {"train": f"{run_root}/tfrecords/train-00000-of-00001.tfrecord",
                        "validation": f"{run_root}/tfrecords/validation-00000-of-00001.tfrecord"}
    assert json.loads(json.loads(described["HyperParameters"]["provenance"])) == {"run": "EmojiFlow/5",
                                                                                  "data": "tweets.csv"}


def _lifecycle(target, run: RunInfo, bundle_uri: str, reference: str, tmp_path, smoke=("a smoke text",)):
    """One model through a target, as the flows and the CLI use it: register, deploy, champion, list, approve
    or reject, find approved, serve; each answer of the contract's type."""
    target.register(run, bundle_uri, METRICS, PASSED)
    deployment = target.deploy(run, bundle_uri, PASSED, list(smoke))
    assert isinstance(deployment, Deployment) and deployment.deployed and deployment.version == run.run_id
    assert [text for text, _ in deployment.smoke] == list(smoke) and deployment.path and deployment.query
    champion = target.champion(str(tmp_path / "champion"))
    assert champion is not None and (champion / "saved_model").is_dir()
    listed = target.models()
    assert listed and all(isinstance(m, ModelVersion) for m in listed)
    mine = next(m for m in listed if m.reference == reference)
    assert "approved" in mine.state.lower()
    assert "reject" in target.set_approval(reference, False).lower()
    assert "approve" in target.set_approval(reference, True).lower()
    approved = target.approved(reference)
    assert isinstance(approved, Approved) and approved.version == run.run_id and approved.run == run.pathspec
    served = target.serve(approved, list(smoke))
    assert isinstance(served, Deployment) and served.deployed and served.changed is False  # serving already
    # A failed verdict never changes what serves: the local target refuses, saying why; SageMaker keeps
    # serving its newest approved package, the one serving already.
    refused = target.deploy(run, bundle_uri, {"passed": False, "reasons": ["below the minimum"]}, list(smoke))
    if isinstance(target, SageMakerTarget):
        assert refused.deployed and refused.changed is False and refused.version == approved.version
    else:
        assert not refused.deployed and refused.reason == "below the minimum" and refused.changed is None
    return deployment


@pytest.mark.slow
def test_the_local_target_honours_the_contract(tmp_path, tiny_bundle):
    from emoji_reco import registry

    pathspec = gated_run(tmp_path, str(tiny_bundle[1]))
    settings = typed_settings(**{"deploy.endpoint": f"conform-{uuid.uuid4().hex[:6]}",
                                 "deploy.flow": "GatedFlow"})
    target = backends.target(settings)
    run = RunInfo(pathspec, pathspec.split("/")[1], str(tmp_path / "run"), str(tmp_path))
    registry.tag_verdict(pathspec, PASSED)  # the register step's tags: the local registry
    deployment = _lifecycle(target, run, str(tiny_bundle[1]), pathspec, tmp_path)
    assert deployment.target == "local" and target.champion(str(tmp_path)).name == run.run_id
    with pytest.raises(Exception, match="no approval note"):
        target.set_approval(pathspec, True, note="looks fine")


def test_the_sagemaker_target_honours_the_contract(aws, moto_server, tmp_path, tiny_bundle):
    _, bucket = aws
    group, name = f"conform-{uuid.uuid4().hex[:6]}", f"conform-{uuid.uuid4().hex[:6]}"
    settings = sagemaker_settings(**{"sagemaker.registry.group": group, "deploy.endpoint": name})
    target = backends.target(settings)
    run_root = f"s3://{bucket}/metaflow/EmojiFlow/21/emoji_reco"
    storage.put_dir(str(tiny_bundle[1]), f"{run_root}/model")
    run = RunInfo("EmojiFlow/21", "21", run_root, f"s3://{bucket}/metaflow")
    smoke = [f"conformance smoke {uuid.uuid4().hex}"]  # moto answers its queued result for this body only
    # One answer for the one smoke prediction made (serving again what serves invokes nothing): moto hands
    # queued answers to the next new request body, whichever test sends it.
    queue_answer(moto_server, json.dumps({"predictions": [[{"emoji": "😂", "probability": 0.6}]]}).encode())
    deployment = _lifecycle(target, run, f"{run_root}/model", "1", tmp_path, smoke)
    assert deployment.target == "sagemaker" and deployment.endpoint == name
    assert target.champion(str(tmp_path / "c")).name == "21"  # fetched under its version's name


def test_a_sagemaker_deploy_asks_the_recheck_against_another_runs_champion(aws, tmp_path, tiny_bundle):
    _, bucket = aws
    group = f"recheck-{uuid.uuid4().hex[:6]}"
    target = backends.target(sagemaker_settings(**{"sagemaker.registry.group": group}))
    for run_id in ("30", "31"):  # 30 the champion, 31 the candidate; both approved by the gate
        run_root = f"s3://{bucket}/metaflow/EmojiFlow/{run_id}/emoji_reco"
        storage.put_dir(str(tiny_bundle[1]), f"{run_root}/model")
        target.register(RunInfo(f"EmojiFlow/{run_id}", run_id, run_root, f"s3://{bucket}/metaflow"),
                        f"{run_root}/model", METRICS, PASSED)
    asked = []

    def recheck(champion_dir):
        asked.append(champion_dir.name)
        return {"passed": False, "reasons": ["top1 0.5 is worse than the champion's 0.6 by more than 0.01"]}

    candidate = RunInfo("EmojiFlow/31", "31", f"s3://{bucket}/metaflow/EmojiFlow/31/emoji_reco",
                        f"s3://{bucket}/metaflow")
    refused = target.deploy(candidate, f"{candidate.run_root}/model", PASSED, ["unused"], recheck)
    assert asked == ["30"] and not refused.deployed and "worse than the champion" in refused.reason


def test_the_flows_steps_contain_no_backend_choices():
    tree = ast.parse(open(FLOW).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in ("train", "evaluate", "register", "deploy"):
            names = {n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
                     and isinstance(n.value, str)}
            assert not names & {"local", "sagemaker", "backend", "target"}, (node.name, names)
            imports = {a.name for n in ast.walk(node) if isinstance(n, ast.ImportFrom) for a in n.names}
            assert not {m for m in imports if m.startswith("sagemaker")}, (node.name, imports)
