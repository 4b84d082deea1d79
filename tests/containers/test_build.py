"""`make images` and `make push-images` refuse in one line what they can't do, before building anything."""
import os
import shutil
import subprocess

from helpers.flows import ROOT


def test_no_engine_installed_says_which_to_install(tmp_path):
    for tool in ("bash", "dirname", "sed"):  # all the build script needs before it looks for an engine
        (tmp_path / tool).symlink_to(shutil.which(tool))
    done = subprocess.run([str(ROOT / "containers" / "build")], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(tmp_path)})
    assert done.returncode == 2
    assert (done.stderr.strip() == "no container engine found: install Docker or Podman "
                                   "(apt-get install podman)")
    chosen = subprocess.run(["make", "-s", "-C", str(ROOT), "images"], capture_output=True, text=True,
                            timeout=60,
                            env={**os.environ, "CONTAINER_ENGINE": "nerdctl-not-here"})
    assert chosen.returncode != 0 and "CONTAINER_ENGINE=nerdctl-not-here is not installed" in chosen.stderr


def test_push_images_needs_a_registry():
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "push-images"], capture_output=True, text=True,
                          timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "REGISTRY"})
    assert done.returncode != 0 and "REGISTRY: set it to the registry to push to" in done.stderr
