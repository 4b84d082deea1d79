"""The model a server serves: loaded and warmed on the side, swapped in whole, reloaded when its source has a
new version, with failed versions retried after a backoff and never pinned."""
import asyncio
import logging
import time
from dataclasses import dataclass

from emoji_reco.errors import ModelError

log = logging.getLogger("emoji_reco.serving.server")


@dataclass(frozen=True)
class Loaded:
    predictor: object
    version: str
    emojis: list


@dataclass
class Failure:
    """A version that failed to load: tried again after a backoff, never pinned."""

    attempts: int
    retry_at: float


class ServedModel:
    """The model being served; a new version is loaded and warmed on the side, then swapped in whole, so
    requests in flight finish on the version they started with."""

    def __init__(self, source, metrics=None, options: dict | None = None):
        self.source, self.metrics = source, metrics  # serving.metrics.Metrics, or None
        self.options = options or {}  # for the Predictor: runtime, calls, op_threads
        self.current: Loaded | None = None
        self.failed: dict[str, Failure] = {}
        self.source_error: str | None = None  # why the source's newest version can't be read now

    def load(self, version: str) -> Loaded:
        from emoji_reco.model.bundle import Predictor

        predictor = Predictor(self.source.folder(version), **self.options)
        predictor.warm_up()
        self.current = Loaded(predictor, version, predictor.emojis)
        if self.metrics:
            self.metrics.serving(version, predictor.runtime)
        log.info("serving version %s (%s) from %s", version, predictor.runtime, self.source.describe)
        return self.current

    def predict(self, texts: list[str]) -> list:
        loaded = self.current
        return [(row, loaded) for row in loaded.predictor.logits(texts).tolist()]

    def _due(self, version: str | None) -> bool:
        if not version or (self.current is not None and version == self.current.version):
            return False
        failure = self.failed.get(version)
        return failure is None or time.monotonic() >= failure.retry_at

    async def check(self, interval: float) -> None:
        """Load the source's newest version if it is new (or due for another try); never raises."""
        loop = asyncio.get_running_loop()
        try:
            version = await loop.run_in_executor(None, self.source.version)
            self.source_error = None
        except ModelError as exc:  # the source says in words what is missing: one log line while it lasts
            if self.source_error != str(exc):
                log.error("%s Looking again every %.0f s.", exc, interval)
            self.source_error = str(exc)
            return
        except Exception:  # an unreadable or half-written pointer: keep serving, look again later
            log.exception("can't read the newest version from %s; still serving %s", self.source.describe,
                          self.current and self.current.version)
            self.source_error = "the newest version can't be read; see the server log"
            return
        if not self._due(version):
            return
        try:
            await loop.run_in_executor(None, self.load, version)
            self.failed.clear()  # older failures no longer keep the newest version from serving
        except Exception as exc:  # keep serving what we have; try this version again after a backoff
            attempts = self.failed[version].attempts + 1 if version in self.failed else 1
            delay = min(300.0, max(interval, 1.0) * 2 ** (attempts - 1))
            self.failed[version] = Failure(attempts, time.monotonic() + delay)
            if self.metrics:
                self.metrics.reload_failures.inc()
            said = isinstance(exc, ModelError)  # says in words what is wrong: one line, no traceback
            log.error("version %s failed to load (attempt %d)%s, retrying in %.0f s; still serving %s",
                      version, attempts, f": {exc}" if said else "", delay,
                      self.current and self.current.version,
                      exc_info=None if said else exc)

    async def follow(self, interval: float) -> None:
        """Check for a new version every `interval` seconds (once, for a fixed model)."""
        while True:
            await self.check(interval)
            if not self.source.follows:
                return
            await asyncio.sleep(interval)

    def problem(self) -> str | None:
        """What keeps the newest version from serving, in words fit for any client (details go to the log)."""
        if self.source_error:
            return self.source_error
        if not self.failed:
            return None
        version, failure = list(self.failed.items())[-1]
        retry = max(0, round(failure.retry_at - time.monotonic())) if self.source.follows else None
        return (f"version {version} failed to load ({failure.attempts} attempt(s)"
                + (f"; next try in {retry} s)" if retry is not None else ")") + "; see the server log")
