"""Keep TensorFlow's start-up notices out of logs on CPU machines.

TensorFlow's native code prints, before its own log level applies, lines such as "failed call to cuInit: CUDA
error" (a CPU-only machine: nothing is wrong) and "oneDNN custom operations are on". `install()` puts a finder
on `sys.meta_path` so that the first `import tensorflow`, wherever it happens (our modules, transformers, a
Metaflow step), and TensorFlow's device discovery run with the process's stderr captured; afterwards every
captured line is written back except those known notices. Set EMOJI_RECO_TF_NOTICES=1 to see them.
"""
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from contextlib import contextmanager

NOTICES = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|cpu_feature_guard|"
    r"To enable the following instructions|rebuild TensorFlow with the appropriate compiler flags|"
    r"Could not find cuda drivers|failed call to cuInit|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|TF-TRT Warning|Attempting to register factory for plugin")


@contextmanager
def captured_native_stderr():
    """Capture file descriptor 2 (native code writes there directly); write back all but the known notices."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not NOTICES.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # resource readers and the like: the real loader's
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with captured_native_stderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # device discovery prints the CUDA lines; no context starts


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level `tensorflow` package (asked again only until it is imported)."""

    busy = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self.busy:
            return None
        self.busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    if os.environ.get("EMOJI_RECO_TF_NOTICES") or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
