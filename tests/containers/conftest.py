"""The images, built once a session from this checkout by `make images`'s script (skipped where no engine is
installed, failed in CI); every test here is marked `container`."""
import pytest

from helpers import containers


def pytest_collection_modifyitems(items):
    for item in items:
        if "/containers/" in str(item.fspath):
            item.add_marker(pytest.mark.container)


@pytest.fixture(scope="session")
def train_image(tmp_path_factory):
    return containers.build("train", tmp_path_factory.mktemp("build") / "train.log")


@pytest.fixture(scope="session")
def inference_image(tmp_path_factory):
    return containers.build("inference", tmp_path_factory.mktemp("build") / "inference.log")
