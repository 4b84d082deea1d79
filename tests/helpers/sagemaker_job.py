"""Helpers for tests of SageMaker's side: an /opt/ml as a training job sees it, our training entry point run
on it, and a SageMaker-mode config."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from emoji_reco.data import demo
from emoji_reco.model import bundle, tfrecords, tokenization
from emoji_reco.serving import payloads
from helpers.containers import version
from helpers.flows import ROOT

ROLE = "arn:aws:iam::123456789012:role/emoji-sagemaker"
QUICK_SAGEMAKER = {"sagemaker.role": ROLE, "sagemaker.training.poll_seconds": 0.1,
                   "sagemaker.endpoint.poll_seconds": 0.1}


def settings(**changes):
    """config/sagemaker.json as the flow parses it, with a role and quick polling, plus `{"section.key":
    value}`, typed (`Settings`)."""
    from emoji_reco.settings import parse, typed, with_overrides

    return typed(with_overrides(parse(json.dumps({"extends": "sagemaker.json"})),
                                {**QUICK_SAGEMAKER, **changes}))


def queue_answer(moto_server: str, body: bytes) -> None:
    """What the next invoke_endpoint returns (moto's endpoint-results queue). Moto then answers that request
    body with that result whatever the endpoint, so every test sends texts no other test sends."""
    import httpx

    httpx.post(f"{moto_server}/moto-api/static/sagemaker/endpoint-results", json={
        "results": [{"Body": body.decode(), "ContentType": "application/json"}]}).raise_for_status()


def env(**extra) -> dict:
    """This process's environment (as it is now: tests may point AWS at moto), with our venv's bin on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **extra}


def opt_ml(root: Path, model_dir: Path, channels=("train", "validation")) -> Path:
    """An /opt/ml as SageMaker lays it out for a training job: hyperparameters and TFRecord channels."""
    splits = {name: demo.demo_tweets(200, seed=i).assign(label=lambda f: f.LABEL.map(demo.EMOJIS.index))
              .rename(columns={"TWEET": "text"}) for i, name in enumerate(channels)}
    tok = tokenization.save_fast_tokenizer(model_dir, root / "tok")
    for written in tfrecords.convert_shard(splits, 0, 1, tok, 32, 64, str(root / "records")):
        channel = root / "input" / "data" / written["split"]
        channel.mkdir(parents=True, exist_ok=True)
        shutil.copy(written["uri"], channel)
    settings = {"model": {"base": str(model_dir), "max_length": 32},
                "train": {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "warmup_fraction": 0.1,
                          "weight_decay": 0.01, "bucket_boundaries": [8, 16], "seed": 1}}
    (root / "input" / "config").mkdir(parents=True)
    # As the SDK's script mode writes them: every value JSON-encoded (our own image gets the JSON text as is).
    hyperparameters = {"settings": json.dumps(json.dumps(settings)),
                       "emojis": json.dumps(json.dumps(demo.EMOJIS))}
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (root / "model").mkdir()
    return root


def run_train(root: Path):
    return subprocess.run([str(ROOT / "containers" / "train" / "train"), "train"], capture_output=True,
                          text=True,
                          env=env(EMOJI_RECO_OPT_ML=str(root)), timeout=500)


def cluster_roots(tmp_path: Path, model_dir: Path, hosts: list[str], port: int) -> list[Path]:
    """Each host's /opt/ml for one training job of len(hosts) instances (`resourceconfig.json`; every host
    gets every record, as S3 channels are fully replicated), training across them from `port` on."""
    roots = []
    for host in hosts:
        root = opt_ml(tmp_path / host, model_dir)
        config = root / "input" / "config"
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": hosts}))
        hyper = json.loads((config / "hyperparameters.json").read_text())
        settings = json.loads(json.loads(hyper["settings"]))
        settings["train"]["distribution"] = {"port": port, "timeout_seconds": 30}
        hyper["settings"] = json.dumps(json.dumps(settings))
        (config / "hyperparameters.json").write_text(json.dumps(hyper))
        roots.append(root)
    return roots


# Our inference image as `make push-images` names it in a registry.
OUR_IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/emoji-reco-inference:{version()}"


def real_answer(tiny_bundle, texts) -> bytes:
    """What our server answers for `texts` with the tiny bundle."""
    model_dir = tiny_bundle[1]
    predictor = bundle.Predictor(model_dir)
    return json.dumps(payloads.response(predictor.logits(texts).tolist(), predictor.emojis, 3, False,
                                        "v1")).encode()
