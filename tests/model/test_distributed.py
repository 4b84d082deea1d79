"""Training across workers for real, on this machine's CPUs: worker processes on 127.0.0.1 train one model
together through TensorFlow's collective ops (MultiWorkerMirroredStrategy), as SageMaker hosts or Metaflow
@parallel nodes would; and how a cluster is read from what SageMaker gives a job."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emoji_reco.model import distribution
from helpers.flows import ROOT
from helpers.network import consecutive_free_ports, free_port
from helpers.sagemaker_job import env

WORKER = str(ROOT / "tests" / "helpers" / "train_worker.py")
# A global batch of 32: one process of 32, or two workers of 16 each; the default head (mean pooling).
TRAIN = {"epochs": 2, "learning_rate": 1e-3, "warmup_fraction": 0.1, "weight_decay": 0.01, "seed": 3,
         "bucket_boundaries": [], "pad_to_length": 24, "precision": "auto",
         "distribution.timeout_seconds": 20}


@pytest.fixture(scope="module")
def steady_model(tmp_path_factory, bundled_model_dir):
    """A 2-layer, 32-wide BERT without dropout (so one process and two workers take exactly the same
    steps)."""
    import shutil

    from transformers import BertConfig, TFBertModel

    import emoji_reco  # noqa: F401

    folder = tmp_path_factory.mktemp("steady-bert")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(bundled_model_dir / name, folder / name)
    model = TFBertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=2,
                                   intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                   attention_probs_dropout_prob=0.0))
    model(model.dummy_inputs)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def shards(tmp_path_factory, steady_model):
    """256 training and 64 validation demo tweets as one TFRecord file per split."""
    from emoji_reco.data import demo
    from emoji_reco.model import tfrecords

    tweets = demo.demo_tweets(320, seed=11).assign(label=lambda f: f.LABEL.map(demo.EMOJIS.index))
    tweets = tweets.rename(columns={"TWEET": "text"})
    splits = {"train": tweets.iloc[:256].reset_index(drop=True),
              "validation": tweets.iloc[256:].reset_index(drop=True)}
    out = tmp_path_factory.mktemp("records")
    written = tfrecords.convert_shard(splits, 0, 1, steady_model, 24, 256, str(out))
    files = {s: [w["uri"] for w in written if w["split"] == s] for s in splits}
    per_file = {s: [w["records"] for w in written if w["split"] == s] for s in splits}
    return files, per_file, demo.EMOJIS


def _launch(tmp_path, steady_model, shards, workers: int, batch: int, **train):
    """Start `workers` worker processes (one: no TF_CONFIG) sharing a job file; (processes, out folder)."""
    files, per_file, emojis = shards
    out = tmp_path / f"out-{workers}"
    out.mkdir()
    job = out / "job.json"
    changes = {f"train.{key}": value for key, value in {**TRAIN, "batch_size": batch, **train}.items()}
    job.write_text(json.dumps({"settings": changes, "files": files,
                               "per_file": per_file, "emojis": emojis, "base_dir": str(steady_model),
                               "out": str(out)}))
    ports = [free_port() for _ in range(workers)]
    procs = []
    for index in range(workers):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                     "task": {"type": "worker", "index": index}}
        extra = {"TF_CONFIG": json.dumps(tf_config)} if workers > 1 else {}
        with open(out / f"worker-{index}.log", "w") as log:
            procs.append(subprocess.Popen([sys.executable, WORKER, str(job)], env=env(**extra), stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
    return procs, out


def _finish(procs, logs, timeout=400) -> list[str]:
    """Each worker's log (`logs`: a folder of worker-<i>.log, or the files) once it ends (killed after
    `timeout` s: a TensorFlow process stuck in a collective ignores SIGTERM)."""
    deadline = time.time() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    paths = [logs / f"worker-{i}.log" for i in range(len(procs))] if isinstance(logs, Path) else logs
    return [path.read_text() for path in paths]


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_two_workers_train_one_model_as_one_process_with_the_same_global_batch(
        tmp_path, steady_model, shards):
    single, single_out = _launch(tmp_path, steady_model, shards, 1, 32)
    (log,) = _finish(single, single_out)
    assert single[0].returncode == 0, log[-3000:]
    pair, pair_out = _launch(tmp_path, steady_model, shards, 2, 16)
    logs = _finish(pair, pair_out)
    assert [p.returncode for p in pair] == [0, 0], "\n".join(log[-2000:] for log in logs)

    ran = [json.loads((pair_out / f"worker-{i}.json").read_text()) for i in (0, 1)]
    assert [r["plan"]["replicas"] for r in ran] == [2, 2] and ran[0]["plan"]["global_batch"] == 32
    assert ran[0]["plan"]["strategy"] == "MultiWorkerMirrored" and ran[0]["plan"]["per_replica_batch"] == 16
    weights = [np.load(pair_out / f"worker-{i}.npz") for i in (0, 1)]
    for name in weights[0].files:  # both workers end with the very same model
        np.testing.assert_array_equal(weights[0][name], weights[1][name])
    # Every step holds the examples one process's step holds (each worker takes every other record of the same
    # shuffled order) and both learn on one schedule; what remains is float32 rounding of gradients summed in
    # two halves, which Adam's normalisation lets grow a little: seen up to 1.44e-3 relative (the mean-pooled
    # head sums every position's gradient; 3.2e-4 for the [CLS] head), allowed 3e-3.
    alone = json.loads((single_out / "worker-0.json").read_text())["history"]
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose([h[key] for h in ran[0]["history"]], [h[key] for h in alone], rtol=3e-3)


@pytest.mark.distributed
@pytest.mark.timeout(600)
def test_a_worker_that_dies_ends_the_other_with_a_clear_error_within_the_timeout(
        tmp_path, steady_model, shards):
    pair, out = _launch(tmp_path, steady_model, shards, 2, 16, epochs=200)
    try:
        deadline = time.time() + 240
        while not all("fitting" in (out / f"worker-{i}.log").read_text() for i in (0, 1)):
            assert time.time() < deadline and all(p.poll() is None for p in pair), _finish(pair, out, 1)
            time.sleep(0.5)
        time.sleep(20)  # into the collective steps of the fit
        assert pair[0].poll() is None
        os.killpg(pair[1].pid, signal.SIGKILL)
        killed = time.time()
        pair[0].wait(timeout=TRAIN["distribution.timeout_seconds"] + 60)
        ended = time.time() - killed
    finally:
        log = _finish(pair, out, 1)[0]
    assert pair[0].returncode != 0
    assert "Training across 2 workers stopped" in log and "a worker was lost" in log, log[-3000:]
    assert ended < TRAIN["distribution.timeout_seconds"] + 60


def test_a_sagemaker_cluster_is_read_from_its_resource_config(tmp_path, monkeypatch):
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    assert distribution.sagemaker_tf_config(tmp_path, 23456) is None  # not a SageMaker job
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    assert distribution.sagemaker_tf_config(tmp_path, 23456) is None  # one host: nothing to distribute
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-2",
                                                            "hosts": ["algo-1", "algo-2"],
                                                            "network_interface_name": "eth0"}))
    assert distribution.sagemaker_tf_config(tmp_path, 23456) == {
        "cluster": {"worker": ["algo-1:23456", "algo-2:23457"]}, "task": {"type": "worker", "index": 1}}
    (config / "resourceconfig.json").unlink()
    monkeypatch.setenv("SM_HOSTS", '["algo-1", "algo-2", "algo-3"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-1")
    assert distribution.sagemaker_tf_config(tmp_path, 100)["task"]["index"] == 0


def test_workers_share_whole_files_where_there_are_enough_and_records_otherwise():
    files = [{"path": f"f{i}", "records": n} for i, n in enumerate((10, 12, 9))]
    assert distribution.worker_share(files, 3, 1) == ([files[1]], None)
    assert distribution.worker_share(files, 2, 1) == ([files[1]], None)
    assert distribution.worker_share(files[:1], 2, 1) == (files[:1], (2, 1))
    # the smallest share (9 records) sets every worker's steps
    assert distribution.steps_per_epoch(files, 3, 4) == 2
    assert distribution.steps_per_epoch(files[:1], 2, 4) == 1  # 10 records in two: 5 each
    assert distribution.steps_per_epoch(files[:1], 2, 64) == 1  # never zero


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_a_sagemaker_job_of_two_instances_trains_one_model_and_only_the_chief_writes_the_bundle(
        tmp_path, tiny_model):
    """Our training image's entry point on two hosts' /opt/ml, as SageMaker lays them out for `instance_count`
    2 (each host gets every record: S3 channels are fully replicated); the hosts are two loopback
    addresses."""
    from emoji_reco.model import bundle
    from helpers.sagemaker_job import cluster_roots

    roots, procs = cluster_roots(tmp_path, tiny_model, ["127.0.0.1", "127.0.0.2"],
                                 consecutive_free_ports()), []
    for root in roots:
        with open(root / "job.log", "w") as log:
            procs.append(subprocess.Popen([str(ROOT / "containers" / "train" / "train"), "train"], stdout=log,
                                          stderr=subprocess.STDOUT, env=env(EMOJI_RECO_OPT_ML=str(root)),
                                          start_new_session=True))
    logs = _finish(procs, [root / "job.log" for root in roots], 600)
    assert [p.returncode for p in procs] == [0, 0], "\n".join(log[-2000:] for log in logs)
    chief, worker = (root / "model" for root in roots)
    assert not any(worker.iterdir())  # the bundle is written once, by the chief
    metadata = bundle.read_metadata(chief)
    assert metadata["distribution"]["workers"] == 2 and metadata["distribution"]["replicas"] == 2
    assert bundle.Predictor(chief).logits(["does the chief's bundle serve"]).shape == (1, 10)
    # every host reports its epochs
    assert all("metrics epoch=1 " in log and " val_loss=" in log for log in logs)
