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


@pytest.fixture(scope="session")
def inference_int8_image(tmp_path_factory):
    return containers.build("inference-int8", tmp_path_factory.mktemp("build") / "inference-int8.log")


@pytest.fixture(params=["inference", "inference-int8"])
def serving_image(request):
    """Each inference image, and the runtime it serves with no environment set: (image, runtime). The
    server's guarantees in an image are tested on both."""
    name = request.param
    return request.getfixturevalue(name.replace("-", "_") + "_image"), containers.DEFAULT_RUNTIME[name]
