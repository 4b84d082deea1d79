"""The GPU training image: it builds, TensorFlow imports with its CUDA libraries, and with no GPU visible
(this machine has none) a training job runs on the CPU and says so in one line, with none of CUDA's start-up
noise. Its 6.7 GB build is made and checked once per recipe (Dockerfile, setup.py, containers/ scripts): a
stamp outside the work tree records the recipe checked, so CI builds it only when the recipe changed."""
import hashlib
import os
from pathlib import Path

import pytest

from helpers import containers
from helpers.flows import ROOT
from helpers.sagemaker_job import opt_ml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
RECIPE = ["setup.py", "containers/train-gpu/Dockerfile", "containers/train/train", "containers/pip-install",
          "containers/slim-venv", "containers/base/build"]
STAMPS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emoji-reco" / "gpu-image"


def recipe() -> str:
    return hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in RECIPE)).hexdigest()[:16]


def test_the_gpu_image_imports_cuda_tensorflow_and_trains_on_the_cpu_without_a_gpu(tiny_model, tmp_path):
    stamp = STAMPS / recipe()
    if stamp.exists() and not os.environ.get("EMOJI_RECO_BUILD_GPU_IMAGE"):
        pytest.skip(f"this GPU image recipe was built and checked already ({stamp}); "
                    "EMOJI_RECO_BUILD_GPU_IMAGE=1 checks it again")
    image = containers.build("train-gpu", tmp_path / "build.log")
    built = containers.run("--entrypoint", "python", image, "-c",
                           "import tensorflow as tf, nvidia.cudnn, nvidia.cublas; "
                           "print('cuda', tf.test.is_built_with_cuda(), "
                           "tf.sysconfig.get_build_info()['cuda_version'])",
                           check=True)
    assert "cuda True 12" in built.stdout
    root = opt_ml(tmp_path / "ml", tiny_model)
    (root / "output").mkdir()
    done = containers.run("--network", "none", "-v", f"{root}/input:/opt/ml/input:ro", "-v",
                          f"{root}/model:/opt/ml/model",
                          "-v", f"{root}/output:/opt/ml/output", "-v", f"{tiny_model}:{tiny_model}:ro", image,
                          "train",
                          check=True)
    log = done.stdout + done.stderr
    assert log.count("no GPU visible to this CUDA build of TensorFlow; training on the CPU") == 1
    assert "metrics epoch=1 " in log and (root / "model" / "saved_model" / "saved_model.pb").is_file()
    for noise in ("cuInit", "CUDA error", "Traceback", "Unable to register"):
        assert noise not in log, log[-3000:]
    containers.remove(image)  # 6.7 GB: checked, then not kept
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(image)
