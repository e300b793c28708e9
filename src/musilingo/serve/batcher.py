"""Dynamic batching: requests from the event loop, model calls on one worker thread.

Coroutines ``await batcher.submit(kind, payload)``; a single daemon thread collects waiting items
of one kind (the oldest item's kind) until ``max_batch`` have gathered or the oldest has waited
``max_wait_ms``, calls that kind's handler once with the whole list, and hands each result back to
the awaiting coroutine's event loop. Torch is not safe to call concurrently on one model, so all
model work runs on this one thread; concurrency comes from batching, not from parallel calls.

Under load the batches fill by themselves: while the worker runs one batch, new items queue up
and are past their wait by the time it is free. Items whose awaiting coroutine gave up (timeout,
client gone) are dropped before they reach the model.

A handler takes ``list[payload]`` and returns one result per payload, in order; a result that is
an ``Exception`` is raised in that item's coroutine only. A handler that raises fails its whole
batch. This module knows nothing about models, HTTP or audio.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[list[Any]], Sequence[Any]]


@dataclass
class KindStats:
    """Counters for one kind of work (reported by /health, checked by tests)."""

    calls: int = 0  # handler calls (= batches)
    items: int = 0  # items run through those calls
    largest_batch: int = 0
    busy_s: float = 0.0  # time spent inside the handler


@dataclass
class _Item:
    kind: str
    payload: Any
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)


class BatcherClosed(RuntimeError):
    """The batcher was closed: the server is shutting down."""


class Batcher:
    """Collects items per kind into batches and runs them on one worker thread."""

    def __init__(self, handlers: Mapping[str, Handler], max_batch: int = 8,
                 max_wait_ms: float = 20.0, name: str = "musilingo-model"):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.handlers = dict(handlers)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.stats = {kind: KindStats() for kind in self.handlers}
        self._name = name
        self._items: list[_Item] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ event-loop side
    async def submit(self, kind: str, payload: Any) -> Any:
        """Queue one item and wait for its result (raises the item's exception)."""
        return (await self.submit_many(kind, [payload]))[0]

    async def submit_many(self, kind: str, payloads: Sequence[Any]) -> list[Any]:
        """Queue several items at once (so they can share a batch); results in order."""
        if kind not in self.handlers:
            raise KeyError(f"no handler for {kind!r}")
        loop = asyncio.get_running_loop()
        items = [_Item(kind, p, loop.create_future(), loop) for p in payloads]
        with self._cond:
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            self._start_locked()
            self._items.extend(items)
            self._cond.notify()
        try:
            return list(await asyncio.gather(*(i.future for i in items)))
        finally:
            for i in items:  # on timeout / error: the worker skips the items still waiting
                if not i.future.done():
                    i.future.cancel()

    def pending(self) -> int:
        """Items waiting for the worker (not counting the batch it is running)."""
        with self._cond:
            return sum(1 for i in self._items if not i.future.done())

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after its current batch; waiting items fail with BatcherClosed."""
        with self._cond:
            self._closed = True
            left, self._items = self._items, []
            self._cond.notify_all()
            thread = self._thread
        for item in left:
            _deliver(item, BatcherClosed("the server is shutting down"))
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    # ------------------------------------------------------------------ worker side
    def _start_locked(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _next_batch(self) -> list[_Item] | None:
        """Block until a batch is due; None when closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                self._items = [i for i in self._items if not i.future.cancelled()]
                if not self._items:
                    self._cond.wait()
                    continue
                kind = self._items[0].kind
                same = [i for i in self._items if i.kind == kind]
                wait = self._items[0].enqueued + self.max_wait_s - time.monotonic()
                if len(same) >= self.max_batch or wait <= 0:
                    batch = same[: self.max_batch]
                    taken = set(map(id, batch))
                    self._items = [i for i in self._items if id(i) not in taken]
                    return batch
                self._cond.wait(wait)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            kind = batch[0].kind
            t0 = time.perf_counter()
            try:
                results = list(self.handlers[kind]([i.payload for i in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{kind} handler returned {len(results)} results "
                                       f"for {len(batch)} items")
            except Exception as e:
                log.exception("%s batch of %d failed", kind, len(batch))
                results = [e] * len(batch)
            st = self.stats[kind]
            st.calls += 1
            st.items += len(batch)
            st.largest_batch = max(st.largest_batch, len(batch))
            st.busy_s += time.perf_counter() - t0
            for item, result in zip(batch, results):
                _deliver(item, result)


def _deliver(item: _Item, result: Any) -> None:
    def settle() -> None:
        if item.future.done():
            return
        if isinstance(result, BaseException):
            item.future.set_exception(result)
        else:
            item.future.set_result(result)

    try:
        item.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
