"""The serving building blocks without HTTP or a model: the batcher and the conversation store."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

from musilingo.serve.batcher import Batcher, BatcherClosed
from musilingo.serve.conversations import ConversationStore


def run(coro):
    return asyncio.run(coro)


def test_batcher_groups_concurrent_items_and_keeps_order():
    seen: list[list[int]] = []

    def double(xs):
        seen.append(list(xs))
        return [2 * x for x in xs]

    b = Batcher({"double": double}, max_batch=4, max_wait_ms=50)

    async def main():
        return await asyncio.gather(*(b.submit("double", i) for i in range(10)))

    assert run(main()) == [2 * i for i in range(10)]
    assert sorted(x for batch in seen for x in batch) == list(range(10))
    assert max(len(s) for s in seen) == 4 and b.stats["double"].calls == len(seen) < 10
    b.close()


def test_batcher_max_batch_1_runs_one_by_one():
    b = Batcher({"id": lambda xs: xs}, max_batch=1, max_wait_ms=0)

    async def main():
        return await asyncio.gather(*(b.submit("id", i) for i in range(5)))

    assert run(main()) == list(range(5))
    assert b.stats["id"].calls == 5 and b.stats["id"].largest_batch == 1
    b.close()


def test_batcher_keeps_kinds_apart_and_submit_many_shares_a_batch():
    kinds: list[tuple[str, int]] = []
    b = Batcher({"a": lambda xs: (kinds.append(("a", len(xs))), [f"a{x}" for x in xs])[1],
                 "b": lambda xs: (kinds.append(("b", len(xs))), [f"b{x}" for x in xs])[1]},
                max_batch=8, max_wait_ms=30)

    async def main():
        return await asyncio.gather(b.submit_many("a", [1, 2, 3]), b.submit("b", 9))

    assert run(main()) == [["a1", "a2", "a3"], "b9"]
    assert sorted(kinds) == [("a", 3), ("b", 1)]
    b.close()


def test_batcher_errors_stay_with_their_item_or_batch():
    def handler(xs):
        if "boom" in xs:
            raise RuntimeError("handler failed")
        return [ValueError(f"bad {x}") if x < 0 else x for x in xs]

    b = Batcher({"h": handler}, max_batch=8, max_wait_ms=30)

    async def main():
        return await asyncio.gather(b.submit("h", 1), b.submit("h", -1), return_exceptions=True)

    ok, bad = run(main())
    assert ok == 1 and isinstance(bad, ValueError)
    with pytest.raises(RuntimeError, match="handler failed"):
        run(b.submit("h", "boom"))
    assert run(b.submit("h", 5)) == 5  # the worker survived
    b.close()


def test_batcher_drops_items_whose_caller_gave_up():
    release = threading.Event()
    ran: list[int] = []

    def slow(xs):
        ran.extend(xs)
        release.wait(5)
        return xs

    b = Batcher({"s": slow}, max_batch=1, max_wait_ms=0)

    async def main():
        first = asyncio.ensure_future(b.submit("s", 1))
        await asyncio.sleep(0.05)  # item 1 is running
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.submit("s", 2), 0.05)  # waits behind 1, then gives up
        release.set()
        assert await first == 1
        assert await b.submit("s", 3) == 3

    run(main())
    assert ran == [1, 3]
    b.close()


def test_batcher_close_fails_waiting_and_new_items():
    b = Batcher({"x": lambda xs: xs}, max_batch=2)
    b.close()
    with pytest.raises(BatcherClosed):
        run(b.submit("x", 1))


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_conversations_lru_turns_and_expiry():
    clock = Clock()
    store = ConversationStore(max_conversations=2, max_turns=3, ttl_s=60, clock=clock)
    f = torch.zeros(2, 4)
    a = store.create("a.wav", 1.0, f)
    b = store.create("b.wav", 1.0, f)
    assert a.id != b.id and len(a.id) >= 16
    assert store.get(a.id) is a  # a becomes most recent
    c = store.create("c.wav", 1.0, f)  # evicts b
    assert store.get(b.id) is None and store.get(a.id) is a and store.get(c.id) is c
    for k in range(5):
        turns = store.prompt_turns(a, f"q{k}")
        assert len(turns) <= 3 and turns[-1].question == f"q{k}" and turns[-1].answer is None
        store.record(a, f"q{k}", f"a{k}")
    assert [t.question for t in a.turns] == ["q2", "q3", "q4"] and a.answered == 5
    assert [t.question for t in store.prompt_turns(a, "q5")] == ["q3", "q4", "q5"]
    clock.t += 59
    assert store.get(a.id) is a and store.expires_in_s(a) == 60
    clock.t += 61
    assert store.get(a.id) is None and store.get(c.id) is None and len(store) == 0
    assert not store.delete(a.id)


def test_conversation_store_one_turn():
    store = ConversationStore(max_turns=1)
    conv = store.create("x", 1.0, torch.zeros(1, 1))
    store.record(conv, "q1", "a1")
    assert [t.question for t in store.prompt_turns(conv, "q2")] == ["q2"]
    time.sleep(0)  # the real clock works too
    assert store.expires_in_s(conv) > 0
