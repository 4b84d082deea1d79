"""Helpers for tests that build our images and run them as AWS does: the engine, the images (built by `make
images`'s script, so a test always runs the code of this checkout), and containers started, waited for and
removed."""
import os
import shlex
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from helpers.flows import ROOT
from helpers.network import free_port

BUILD_TIMEOUT = 1500
DEFAULT_RUNTIME = {"inference": "savedmodel", "inference-int8": "int8"}  # $EMOJI_RECO_RUNTIME unset


def engine() -> str:
    """The engine `make images` uses; skips the test where none is installed, and fails it in CI, which
    installs one."""
    found = subprocess.run([str(ROOT / "containers" / "engine")], capture_output=True, text=True)
    if found.returncode != 0:
        reason = f"no container engine: {found.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found.stdout.strip()


def version() -> str:
    """The version the images are tagged with (containers/version)."""
    return subprocess.run([str(ROOT / "containers" / "version")], capture_output=True, text=True,
                          check=True).stdout.strip()


def build(name: str, log: Path) -> str:
    """emoji-reco-NAME:VERSION built from this checkout (the engine's layer cache makes an unchanged one
    quick)."""
    with log.open("w") as out:
        done = subprocess.run([str(ROOT / "containers" / "build"), name], stdout=out,
                              stderr=subprocess.STDOUT,
                              timeout=BUILD_TIMEOUT, env={**os.environ, "CONTAINER_ENGINE": engine()})
    assert done.returncode == 0, log.read_text()[-4000:]
    return f"emoji-reco-{name}:{version()}"


def remove(image: str) -> None:
    subprocess.run([engine(), "rmi", "-f", image], capture_output=True, timeout=300)


def run(*args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    """`ENGINE run --rm ARGS...` to completion."""
    done = subprocess.run([engine(), "run", "--rm", *args], capture_output=True, text=True, timeout=timeout)
    assert not check or done.returncode == 0, (
        f"{shlex.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def logs(name: str) -> str:
    done = subprocess.run([engine(), "logs", name], capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def state(name: str) -> dict:
    """The container's `State` (Running, ExitCode, ...)."""
    import json

    done = subprocess.run([engine(), "inspect", "--format", "{{json .State}}", name], capture_output=True,
                          text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


@contextmanager
def started(image: str, *args: str, ready=None, timeout: float = 180):
    """A detached container (its name yielded with `ready`'s value) removed afterwards; `ready(name)` is
    polled until it returns something other than None, and the test fails with the container's logs if it
    exits first."""
    name = f"emoji-test-{uuid.uuid4().hex[:8]}"
    begun = subprocess.run([engine(), "run", "-d", "--name", name, *args, image], capture_output=True,
                           text=True,
                           timeout=120)
    assert begun.returncode == 0, f"{shlex.join(args)}: {begun.stderr}"
    try:
        value, deadline = None, time.time() + timeout
        while ready is not None and (value := ready(name)) is None:
            assert state(name)["Running"], f"{name} exited:\n{logs(name)[-4000:]}"
            assert time.time() < deadline, f"{name} not ready within {timeout} s:\n{logs(name)[-4000:]}"
            time.sleep(0.3)
        yield name, value
    finally:
        subprocess.run([engine(), "rm", "-f", "-t", "0", name], capture_output=True, timeout=120)


def answering(url: str, status: int = 200):
    """A `ready` check: `url` once /ping answers `status`."""
    def check(_name):
        try:
            return url if httpx.get(f"{url}/ping", timeout=5).status_code == status else None
        except httpx.TransportError:
            return None
    return check


@contextmanager
def serving(image: str, model: Path | None, *args: str, ping: int = 200, **environment):
    """The inference image as SageMaker starts it (`IMAGE serve`, port 8080, the model read-only in
    /opt/ml/model), on a read-only root filesystem, published on 127.0.0.1; yields (url, container name) once
    /ping answers `ping`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if model:  # readable by the image's user, as SageMaker's unpacked model is
        subprocess.run(["chmod", "-R", "a+rX", str(model)], check=True)
    mounts = ["-v", f"{model}:/opt/ml/model:ro"] if model else []
    env = [f"--env={k}={v}" for k, v in environment.items()]
    with started(image, "--read-only", "-p", f"127.0.0.1:{port}:8080", *mounts, *env, *args,
                 ready=answering(url, ping),
                 timeout=180) as (name, _):
        yield url, name


@contextmanager
def docker_api(folder: Path):
    """The engine's Docker-compatible API (what moto's Batch backend runs jobs through): podman's served on a
    socket in `folder` while the block runs, or Docker's own; yields its DOCKER_HOST."""
    if engine() != "podman":
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    socket = folder / "podman.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not socket.exists():
            assert service.poll() is None and time.time() < deadline, "podman's API service did not start"
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(30)
