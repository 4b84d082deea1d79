"""Micro-batching: concurrent requests share one model call; a lone request doesn't wait for company."""
import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass
class _Job:
    texts: list
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher:
    """Runs `predict(texts) -> rows` on one thread, one call at a time. While a call runs, new requests queue;
    the next call takes every queued request up to `max_batch` texts. With `max_wait_ms`, an idle batcher
    also waits that long for more requests before calling (off by default: no added latency).
    `max_batch=1` turns batching off: one request per call (a request with more texts is still one call)."""

    def __init__(self, predict, max_batch: int = 64, max_wait_ms: float = 0.0):
        self.predict, self.max_batch, self.max_wait = predict, max(1, max_batch), max_wait_ms / 1000
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._held: _Job | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.calls = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, texts: list[str]) -> list:
        """The model's rows for `texts`, computed together with whatever else is waiting."""
        job = _Job(list(texts))
        await self._queue.put(job)
        return await job.future

    async def _take(self) -> list[_Job]:
        jobs = [self._held or await self._queue.get()]
        self._held = None
        size = len(jobs[0].texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if size + len(job.texts) > self.max_batch:
                self._held = job  # it goes first in the next call
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._take()
            texts = [t for job in jobs for t in job.texts]
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
