"""The local endpoint: versioned model bundles and an atomically switched pointer to the one serving."""
import fcntl
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from emoji_reco.errors import ModelError
from emoji_reco.settings.sections import DeploySettings

POINTER, HISTORY, LOCK, STAGING = "current.json", "history.jsonl", ".lock", ".staging-"
log = logging.getLogger("emoji_reco.serving.local_endpoint")


def home() -> Path:
    """Where emoji-reco keeps local endpoints: $EMOJI_RECO_HOME, default ~/.emoji-reco."""
    return Path(os.environ.get("EMOJI_RECO_HOME", "~/.emoji-reco")).expanduser()


def smoke_test(bundle_dir: Path, texts: list[str], runtime: str = "savedmodel") -> list:
    """Load a bundle in `runtime` (the server's) and predict `texts`; raise ModelError unless every answer is
    a proper distribution."""
    from emoji_reco.model.bundle import Predictor
    from emoji_reco.serving.payloads import top_k

    try:
        predictor = Predictor(bundle_dir, runtime=runtime)
        answers = top_k(predictor.logits(texts).tolist(), predictor.emojis, 3)
    except Exception as exc:
        raise ModelError(f"Smoke prediction failed for {bundle_dir}: {exc}") from exc
    for text, answer in zip(texts, answers):
        probs = [a["probability"] for a in answer]
        if not answer or not all(0.0 <= p <= 1.0 for p in probs):
            raise ModelError(f"Smoke prediction for {text!r} returned {answer}.")
    return answers


class LocalEndpoint:
    """`<home>/endpoints/<name>/versions/<version>/` bundles; `current.json` names the one serving.

    Every change of the pointer happens under a file lock (`.lock`), so concurrent publishers and rollbacks
    serialise and "previous" is always the version served just before. The pointer is the commit point: it is
    replaced in one rename, and `history.jsonl` follows it (a record lost to a crash is restored by the next
    change). Staging folders of a killed publisher are removed by the next publish."""

    def __init__(self, name: str, root: Path | None = None, runtime: str = "savedmodel"):
        self.name, self.runtime = name, runtime  # the runtime its server runs: smoke tests load that
        self.root = Path(root or home()) / "endpoints" / name
        self.versions_dir = self.root / "versions"

    @contextmanager
    def _locked(self):
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _pointer(self) -> dict:
        """The pointer's record ({} before the first deploy); ValueError when it is unreadable."""
        path = self.root / POINTER
        if not path.is_file():
            return {}
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not isinstance(record.get("version"), str):
            raise ValueError(f"{path} does not name a version")
        return record

    def history(self) -> list[dict]:
        """Every switch, oldest first (a line cut short by a crash is skipped)."""
        path = self.root / HISTORY
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def _state(self) -> dict:
        """The pointer's record, or, when it is unreadable, the last switch in the history (under the
        lock)."""
        try:
            return self._pointer()
        except (ValueError, OSError):
            log.warning("endpoint %s: %s is unreadable; using the last switch in %s", self.name, POINTER,
                        HISTORY)
            history = self.history()
            return history[-1] if history else {}

    def current_version(self) -> str | None:
        return self._pointer().get("version")

    def current_dir(self) -> Path | None:
        return self._dir(self.current_version())

    def versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir()
                      and not p.name.startswith("."))

    def publish(self, bundle_dir: Path, version: str, smoke_texts: list[str], keep: int = 5,
                recheck=None) -> dict:
        """Copy a bundle in as `version`, smoke-test it, then make it current. Half-copied or failing bundles
        never become current; publishing the serving version again changes nothing. `recheck(champion_dir)`,
        called under the lock, may refuse the switch (a verdict with `passed` false) when the champion changed
        since the candidate was evaluated."""
        with self._locked():
            self._tidy()
            if self._state().get("version") == version:
                return {"version": version, "changed": False,
                        "smoke": smoke_test(self.versions_dir / version, smoke_texts, self.runtime)}
        target, staging = self.versions_dir / version, None
        if target.is_dir():
            smoke = smoke_test(target, smoke_texts, self.runtime)
        else:
            staging = self.versions_dir / f"{STAGING}{version}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                shutil.copytree(bundle_dir, staging)
                smoke = smoke_test(staging, smoke_texts, self.runtime)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        with self._locked():
            state = self._state()
            verdict = recheck(self._dir(state.get("version"))) if recheck else None
            if verdict is not None and not verdict["passed"]:
                if staging:
                    shutil.rmtree(staging, ignore_errors=True)
                return {"version": version, "changed": False, "refused": verdict, "smoke": smoke}
            if staging:
                if target.is_dir():  # another publisher brought the same version in meanwhile
                    shutil.rmtree(staging, ignore_errors=True)
                else:
                    os.replace(staging, target)
            self._switch(version, state)
            self.prune(keep)
        return {"version": version, "changed": True, "smoke": smoke,
                **({"recheck": verdict} if verdict else {})}

    def _dir(self, version: str | None) -> Path | None:
        return self.versions_dir / version if version else None

    def switch(self, version: str) -> None:
        """Point the endpoint at `version` (under the lock); the old one stays for rollback."""
        with self._locked():
            self._switch(version, self._state())

    def _switch(self, version: str, state: dict) -> None:
        if not (self.versions_dir / version).is_dir():
            raise ModelError(f"Endpoint {self.name} has no version {version}; it has {self.versions()}.")
        self._reconcile(state)
        record = {"seq": state.get("seq", 0) + 1, "version": version, "previous": state.get("version"),
                  "updated_at": time.time()}
        tmp = self.root / f".{POINTER}.{os.getpid()}"
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, self.root / POINTER)  # the commit point: from here on, `version` serves
        self._append_history(record)

    def _append_history(self, record: dict) -> None:
        try:
            with open(self.root / HISTORY, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError:  # the switch stands; the next change restores the record
            log.warning("endpoint %s: could not record switch %s in %s", self.name, record, HISTORY,
                        exc_info=True)

    def _reconcile(self, state: dict) -> None:
        """Restore the pointer's record in the history if a crash (or a full disk) kept it out."""
        if not state.get("version"):
            return
        history = self.history()
        if not history or history[-1].get("seq", 0) < state.get("seq", 0) or (
                history[-1].get("version") != state["version"]):
            self._append_history(state)

    def _tidy(self) -> None:
        """Remove what killed publishers left: staging folders and pointer temp files of dead processes."""
        for path in [*self.versions_dir.glob(f"{STAGING}*"), *self.root.glob(f".{POINTER}.*")]:
            pid = path.name.rsplit("-" if path.name.startswith(STAGING) else ".", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                log.info("endpoint %s: removing %s, left by a publish that did not finish", self.name,
                         path.name)
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def rollback(self, smoke_texts: list[str] = ("rollback check",)) -> str:
        """Serve the previous version again, once it has passed a smoke prediction."""
        with self._locked():
            state = self._state()
            previous = state.get("previous")
            if not previous:
                raise ModelError(f"Endpoint {self.name} has no previous version to roll back to.")
            if not (self.versions_dir / previous).is_dir():
                raise ModelError(f"Endpoint {self.name}'s previous version {previous} is "
                                 f"gone; nothing changed.")
            smoke_test(self.versions_dir / previous, list(smoke_texts), self.runtime)
            self._switch(previous, state)
        return previous

    def prune(self, keep: int) -> None:
        """Delete the oldest versions beyond `keep`, never the current or previous one."""
        state = self._state()
        protected = {state.get("version"), state.get("previous")}
        old = [v for v in self.versions() if v not in protected]
        for version in old[: max(0, len(self.versions()) - keep)]:
            shutil.rmtree(self.versions_dir / version, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        pass
    return True


def deploy(bundle_uri: str, settings: DeploySettings, version: str, smoke_texts: list[str],
           recheck=None, runtime: str = "savedmodel") -> dict:
    """Publish a bundle to the configured endpoint, smoke-tested first in `runtime`, if `recheck` (see
    `publish`) lets it; return whether it was deployed and where it serves."""
    import tempfile

    from emoji_reco import storage

    endpoint = LocalEndpoint(settings.endpoint, runtime=runtime)
    with tempfile.TemporaryDirectory(prefix="emoji-reco-deploy-") as tmp:
        result = endpoint.publish(Path(storage.get_dir(bundle_uri, f"{tmp}/bundle")), version, smoke_texts,
                                  settings.keep_versions, recheck)
    if "refused" in result:
        from emoji_reco.model.evaluation import refusal

        return {"deployed": False, "reason": refusal(result["refused"]), "recheck": result["refused"]}
    flags = f"--endpoint {endpoint.name}" + ("" if runtime == "savedmodel" else f" --runtime {runtime}")
    result.update(deployed=True, target="local", endpoint=endpoint.name, path=str(endpoint.current_dir()),
                  query=f'emoji-reco predict {flags} "your tweet here"', serve=f"emoji-reco serve {flags}")
    result["smoke"] = list(zip(smoke_texts, result["smoke"]))
    return result

