"""The local endpoint: versioned model bundles and an atomically switched pointer to the one serving."""
import json
import os
import shutil
import time
from pathlib import Path

from .errors import ModelError

POINTER, HISTORY = "current.json", "history.jsonl"


def home() -> Path:
    """Where emoji-reco keeps local endpoints: $EMOJI_RECO_HOME, default ~/.emoji-reco."""
    return Path(os.environ.get("EMOJI_RECO_HOME", "~/.emoji-reco")).expanduser()


def smoke_test(bundle_dir: Path, texts: list[str]) -> list:
    """Load a bundle and predict `texts`; raise ModelError unless every answer is a proper distribution."""
    from .bundle import Predictor

    try:
        answers = Predictor(bundle_dir).top_k(texts, k=3)
    except Exception as exc:
        raise ModelError(f"Smoke prediction failed for {bundle_dir}: {exc}") from exc
    for text, answer in zip(texts, answers):
        probs = [a["probability"] for a in answer]
        if not answer or not all(0.0 <= p <= 1.0 for p in probs):
            raise ModelError(f"Smoke prediction for {text!r} returned {answer}.")
    return answers


class LocalEndpoint:
    """`<home>/endpoints/<name>/versions/<version>/` bundles; `current.json` names the one serving."""

    def __init__(self, name: str, root: Path | None = None):
        self.name = name
        self.root = Path(root or home()) / "endpoints" / name
        self.versions_dir = self.root / "versions"

    def _pointer(self) -> dict:
        path = self.root / POINTER
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def current_version(self) -> str | None:
        return self._pointer().get("version")

    def current_dir(self) -> Path | None:
        version = self.current_version()
        return self.versions_dir / version if version else None

    def versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def publish(self, bundle_dir: Path, version: str, smoke_texts: list[str], keep: int = 5) -> dict:
        """Copy a bundle in as `version`, smoke-test it, then make it current. Half-copied or failing
        bundles never become current; publishing the serving version again changes nothing."""
        if self.current_version() == version:
            return {"version": version, "changed": False, "smoke": smoke_test(self.versions_dir / version, smoke_texts)}
        target = self.versions_dir / version
        if target.is_dir():
            smoke = smoke_test(target, smoke_texts)
        else:
            staging = self.versions_dir / f".staging-{version}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(bundle_dir, staging)
            try:
                smoke = smoke_test(staging, smoke_texts)
            except ModelError:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            os.replace(staging, target)
        self.switch(version)
        self.prune(keep)
        return {"version": version, "changed": True, "smoke": smoke}

    def switch(self, version: str) -> None:
        """Point the endpoint at `version` in one atomic rename; the old one stays for rollback."""
        if not (self.versions_dir / version).is_dir():
            raise ModelError(f"Endpoint {self.name} has no version {version}; it has {self.versions()}.")
        old = self._pointer()
        record = {"version": version, "previous": old.get("version"), "updated_at": time.time()}
        tmp = self.root / f".{POINTER}.{os.getpid()}"
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, self.root / POINTER)
        with open(self.root / HISTORY, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def rollback(self) -> str:
        """Serve the previous version again."""
        previous = self._pointer().get("previous")
        if not previous:
            raise ModelError(f"Endpoint {self.name} has no previous version to roll back to.")
        self.switch(previous)
        return previous

    def prune(self, keep: int) -> None:
        """Delete the oldest versions beyond `keep`, never the current or previous one."""
        pointer = self._pointer()
        protected = {pointer.get("version"), pointer.get("previous")}
        old = [v for v in self.versions() if v not in protected]
        for version in old[: max(0, len(self.versions()) - keep)]:
            shutil.rmtree(self.versions_dir / version, ignore_errors=True)


def champion_dir(settings: dict, tmp: str) -> Path | None:
    """The bundle the configured endpoint serves now (local endpoint), or the newest approved one (SageMaker)."""
    if settings["deploy"]["target"] == "sagemaker":
        from . import sagemaker_registry, storage

        newest = sagemaker_registry.newest_approved(settings["sagemaker"]["registry"]["group"])
        return Path(storage.get_dir(newest["bundle_uri"], tmp)) if newest and newest.get("bundle_uri") else None
    return LocalEndpoint(settings["deploy"]["endpoint"]).current_dir()


def deploy(bundle_uri: str, settings: dict, version: str, smoke_texts: list[str]) -> dict:
    """Publish a bundle to the configured endpoint, smoke-tested first; return where it serves."""
    import tempfile

    from . import storage
    from .errors import EmojiRecoError

    if settings["target"] != "local":
        raise EmojiRecoError(f"deploy.target {settings['target']!r} is not supported; use 'local'.")
    endpoint = LocalEndpoint(settings["endpoint"])
    with tempfile.TemporaryDirectory(prefix="emoji-reco-deploy-") as tmp:
        result = endpoint.publish(Path(storage.get_dir(bundle_uri, tmp)), version, smoke_texts, settings["keep_versions"])
    result.update(target="local", endpoint=endpoint.name, path=str(endpoint.current_dir()),
                  query=f'emoji-reco predict --endpoint {endpoint.name} "your tweet here"')
    result["smoke"] = list(zip(smoke_texts, result["smoke"]))
    return result
