"""Fixtures of the SageMaker tests: the tiny bundle packed in a run's S3 prefix for the TF Serving image and
for ours."""
import pytest

from emoji_reco import storage
from emoji_reco.aws import endpoint
from helpers.sagemaker_job import OUR_IMAGE, settings


@pytest.fixture
def packaged(aws, tiny_bundle):
    """The tiny bundle in the run's S3 prefix, packed for the TF Serving image."""
    _, bucket = aws
    run_root = f"s3://{bucket}/metaflow/EmojiFlow/9/emoji_reco"
    storage.put_dir(str(tiny_bundle[1]), f"{run_root}/model")
    return endpoint.upload_model(f"{run_root}/model", settings(), "9", run_root), run_root


@pytest.fixture
def ours(aws, tiny_bundle):
    """The tiny bundle as version 10, packed for our inference image: (model, run root)."""
    run_root = f"s3://{aws[1]}/metaflow/EmojiFlow/10/emoji_reco"
    storage.put_dir(str(tiny_bundle[1]), f"{run_root}/model")
    config = settings(**{"sagemaker.endpoint.image": OUR_IMAGE})
    return endpoint.upload_model(f"{run_root}/model", config, "10", run_root), run_root
