"""Dynamic micro-batching: concurrent requests share one forward pass.

Requests wait in a queue; the worker takes the first and every other one already waiting (those
that arrived during the last forward pass), up to `max_texts` texts. While it holds fewer requests
than were open at once since the last pass began, it waits up to `max_wait` for more: the callers
that pass just answered are about to send their next request, and under load each pass then gathers
all of them instead of alternating between large and small batches. A lone caller never waits.
The model runs off the event loop (a forward pass would block every other connection), and each
caller gets its own slice of the results. When a pass fails, each of its requests is retried alone, so one
caller's input (refused, or one that trips the model or tokenizer) never fails the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass
class Pending:
    texts: list[str]
    pairs: list[str] | None
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    def __init__(self, predict: Callable[[list[str], list[str] | None], list[dict]], max_texts: int,
                 max_wait: float, on_batch: Callable[[int, float], None] = lambda texts, seconds: None):
        self.predict, self.max_texts, self.max_wait, self.on_batch = predict, max_texts, max_wait, on_batch
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stellartune-model")
        self.worker: asyncio.Task | None = None
        self.open = 0  # requests submitted and not yet answered
        self.peak = 0  # the most open at once since the last pass began: how many a pass waits for

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.worker:
            self.worker.cancel()
        self.executor.shutdown(wait=True)

    async def submit(self, texts: list[str], pairs: list[str] | None) -> list[dict]:
        """This caller's predictions, computed together with whatever arrives meanwhile."""
        future = asyncio.get_running_loop().create_future()
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            await self.queue.put(Pending(texts, pairs, future))
            return await future
        finally:
            self.open -= 1

    async def run(self) -> None:
        while True:
            batch = await self.gather()
            await self.answer(batch)

    async def gather(self) -> list[Pending]:
        batch = [await self.queue.get()]
        size, deadline = len(batch[0].texts), time.monotonic() + self.max_wait
        while size < self.max_texts:
            try:
                if self.queue.qsize():
                    pending = self.queue.get_nowait()
                elif len(batch) < self.peak and (left := deadline - time.monotonic()) > 0:
                    pending = await asyncio.wait_for(self.queue.get(), timeout=left)
                else:
                    break
            except asyncio.TimeoutError:
                break
            batch.append(pending)
            size += len(pending.texts)
        self.peak = self.open
        return batch

    async def answer(self, batch: list[Pending]) -> None:
        texts = [t for pending in batch for t in pending.texts]
        pairs = [p for pending in batch for p in pending.pairs] if batch[0].pairs is not None else None
        started = time.perf_counter()
        try:
            results = await self.run_model(texts, pairs)
        except Exception as e:  # noqa: BLE001 - whatever one input causes, it fails that request alone
            if len(batch) == 1:
                fail(batch[0], e)  # a StellarError: 422 naming the field; anything else a bug, 500
            else:
                for pending in batch:  # find whose input it was: each alone
                    await self.answer([pending])
            return
        self.on_batch(len(texts), time.perf_counter() - started)
        start = 0
        for pending in batch:
            if not pending.future.done():  # a caller that went away leaves a cancelled future
                pending.future.set_result(results[start : start + len(pending.texts)])
            start += len(pending.texts)

    async def run_model(self, texts: list[str], pairs: list[str] | None) -> list[dict]:
        return await self.in_model_thread(self.predict, texts, pairs)

    async def in_model_thread(self, function: Callable, *args):
        """`function(*args)` between forward passes: a fast tokenizer must not be used by two threads at once."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)


def fail(pending: Pending, error: BaseException) -> None:
    if not pending.future.done():
        pending.future.set_exception(error)
