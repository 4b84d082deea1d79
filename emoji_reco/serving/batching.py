"""Micro-batching: concurrent requests share model calls; a lone request doesn't wait for company.

Admission is bounded: the queue holds at most `max_queued` texts (a request that doesn't fit is refused at
once with `Overloaded`), and each request has a deadline; a request whose deadline passed or whose caller left
is dropped before the model sees it.
"""
import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from emoji_reco.serving.metrics import DROP_REASONS


class Overloaded(Exception):
    """The queue is full: the caller should come back later."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before the model could score it."""


@dataclass
class _Job:
    texts: list
    deadline: float  # the event loop's clock
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher:
    """Runs `predict(texts) -> rows` on `threads` threads, one call per thread at a time. While the calls run,
    new requests queue; the next free thread takes the queued requests, oldest first, up to `max_batch` texts.
    With `max_wait_ms`, an idle batcher also waits that long for more requests before calling (off by default:
    no added latency). `max_batch=1` turns batching off: one request per call (a request with more texts is
    still one call)."""

    def __init__(self, predict, max_batch: int = 64, max_wait_ms: float = 0.0, threads: int = 1,
                 max_queued: int = 1024, metrics=None):
        self.predict, self.max_batch, self.max_wait = predict, max(1, max_batch), max_wait_ms / 1000
        self.threads, self.max_queued = max(1, threads), max(1, max_queued)
        self._pending: deque[_Job] = deque()
        self.queued = 0  # texts waiting in _pending
        self._arrived: asyncio.Event | None = None
        self._workers: list[asyncio.Task] = []
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="model")
        self.calls = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.metrics = metrics  # serving.metrics.Metrics, or None

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._workers = [asyncio.create_task(self._run()) for _ in range(self.threads)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, texts: list[str], timeout: float | None = None) -> list:
        """The model's rows for `texts`, computed together with whatever else is waiting. Raises `Overloaded`
        at once when the queue has no room, `DeadlineExceeded` when `timeout` seconds pass first. A caller
        that is cancelled (its client left) leaves nothing behind for the model."""
        if self.queued and self.queued + len(texts) > self.max_queued:
            raise Overloaded(f"{self.queued} texts are waiting; at most {self.max_queued}")
        loop = asyncio.get_running_loop()
        job = _Job(list(texts), loop.time() + (timeout if timeout is not None else float("inf")))
        self._pending.append(job)
        self._queue(len(job.texts))
        self._arrived.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within {timeout:.3g} s") from None
        finally:
            job.future.cancel()  # no-op when done; otherwise the batcher skips it

    def _queue(self, texts: int) -> None:
        self.queued += texts
        if self.metrics:
            self.metrics.queued_texts.inc(texts)

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        if self.metrics:
            self.metrics.dropped.labels(reason).inc()

    def _live(self, job: _Job, now: float) -> bool:
        if job.future.done():  # the caller left (or timed out)
            self._drop("gone")
            return False
        if now >= job.deadline:
            self._drop("deadline")
            job.future.set_exception(DeadlineExceeded("deadline passed in the queue"))
            return False
        return True

    def _pop(self) -> _Job:
        job = self._pending.popleft()
        self._queue(-len(job.texts))
        return job

    async def _arrival(self, timeout: float | None = None) -> bool:
        """Wait for a new request (at most `timeout` seconds); False if none came."""
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def _drop_dead_head(self) -> None:
        now = asyncio.get_running_loop().time()
        while self._pending and not self._live(self._pending[0], now):
            self._pop()

    async def _take(self) -> list[_Job]:
        while True:
            self._drop_dead_head()
            if self._pending:
                break
            await self._arrival()
        jobs = [self._pop()]
        size = len(jobs[0].texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch:
            self._drop_dead_head()
            if not self._pending:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or not await self._arrival(remaining):
                    break
                continue
            if size + len(self._pending[0].texts) > self.max_batch:
                break  # it goes first in the next call
            jobs.append(self._pop())
            size += len(jobs[-1].texts)
        if self._pending:  # what is left wakes an idle thread
            self._arrived.set()
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._take()
            texts = [t for job in jobs for t in job.texts]
            if self.metrics:
                self.metrics.batch_texts.observe(len(texts))
            try:
                rows = await loop.run_in_executor(self._executor, self.predict, texts)
            except Exception as exc:  # the callers get the error; the batcher keeps serving
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self.calls += 1
            start = 0
            for job in jobs:
                if not job.future.done():  # a caller that went away has a cancelled future
                    job.future.set_result(rows[start : start + len(job.texts)])
                start += len(job.texts)
