"""The serving building blocks without a server or a model: the batcher, the conversation store,
the request-limits middleware (paths under a mount's ``root_path``, exempt paths) and the
``/v1/limits`` answer built from the settings."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

from musilingo.serve.batcher import Batcher, BatcherClosed
from musilingo.serve.conversations import ConversationStore
from musilingo.serve.limits import InFlight, RequestLimits, route_path
from musilingo.serve.settings import ServeSettings


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


# ---------------------------------------------------------------------------- request limits
@pytest.mark.parametrize(("path", "root", "inside"), [
    ("/v1/chat", "", "/v1/chat"),
    ("/musilingo/v1/chat", "/musilingo", "/v1/chat"),  # Starlette Mount, uvicorn --root-path
    ("/musilingo/v1/chat", "/musilingo/", "/v1/chat"),
    ("/musilingo", "/musilingo", "/"),
    ("/v1/chat", "/musilingo", "/v1/chat"),  # servers that strip the root_path from path
    ("/musilingo2/v1/chat", "/musilingo", "/musilingo2/v1/chat"),  # not under the root
])
def test_route_path_drops_the_root_path(path, root, inside):
    assert route_path({"type": "http", "path": path, "root_path": root}) == inside


def call_limited(middleware, path, root_path="", method="GET", body=b"", length=None):
    """Send one request through ``middleware``; return (status, whether the app was reached)."""
    reached = []
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope = {"type": "http", "method": method, "path": path, "root_path": root_path,
             "headers": headers}
    sent: list[dict] = []

    async def app(scope, receive, send):
        reached.append(scope["path"])
        await receive()  # reads the body, as a route with a form would
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    run(middleware(app)(scope, receive, send))
    return sent[0]["status"], bool(reached)


def test_request_limits_hold_under_a_prefix_and_skip_exempt_paths():
    in_flight = InFlight()

    def middleware(app):
        return RequestLimits(app, in_flight=in_flight, max_queue=1, max_body_bytes=100,
                             retry_after_s=1, max_upload_mb=0.0001, exempt=("/v1/limits",))

    caption = ("/musilingo/v1/caption", "/musilingo", "POST")
    assert call_limited(middleware, *caption, length=500) == (413, False)  # by Content-Length
    assert call_limited(middleware, *caption, b"x" * 500) == (413, True)  # while it streams in
    assert call_limited(middleware, *caption, b"x", 1) == (200, True)
    in_flight.active = 1
    assert call_limited(middleware, *caption) == (503, False)
    assert call_limited(middleware, "/v1/caption", "", "POST") == (503, False)
    assert call_limited(middleware, "/musilingo/v1/limits", "/musilingo") == (200, True)
    assert call_limited(middleware, "/v1/limits") == (200, True)
    assert call_limited(middleware, "/musilingo/health", "/musilingo") == (200, True)
    assert in_flight.active == 1


def test_limits_answer_follows_the_settings_and_the_decoders():
    pytest.importorskip("fastapi")
    from musilingo.audio import AUDIO_EXTENSIONS
    from musilingo.serve.app import audio_extensions, limits_of

    with_ffmpeg = audio_extensions(ffmpeg=True)
    without = audio_extensions(ffmpeg=False)
    assert with_ffmpeg == list(AUDIO_EXTENSIONS)
    assert {".wav", ".flac", ".ogg", ".mp3"} <= set(without)
    assert not {".m4a", ".aac", ".wma", ".mp4", ".webm"} & set(without)  # only ffmpeg reads these
    settings = ServeSettings(max_upload_mb=2.5, max_duration_s=30, max_question_chars=100)
    limits = limits_of(settings, without)
    assert limits.max_upload_bytes == settings.max_upload_bytes == int(2.5 * 1024 * 1024)
    assert (limits.max_duration_s, limits.max_question_chars) == (30, 100)
    assert limits.max_turns == settings.max_turns and limits.max_queue == settings.max_queue
    assert limits.conversation_ttl_s == settings.conversation_ttl_s
    assert limits.audio_mime_types == ["audio/*"]
    assert limits_of(settings, with_ffmpeg).audio_mime_types == ["audio/*", "video/*"]


# ---------------------------------------------------------------------------- prepared-upload cache
def test_prepared_cache_single_flight_lru_and_failures():
    from musilingo.serve.pipeline import PreparedCache

    calls: list[str] = []

    def maker(key: str, size: int = 10, fail: bool = False, delay: float = 0.0):
        async def make():
            calls.append(key)
            await asyncio.sleep(delay)
            if fail:
                raise ValueError(key)
            return f"value-{key}", size
        return make

    async def main():
        c = PreparedCache(max_items=2, max_bytes=25)
        # five concurrent requests for one key: one preparation, four wait for it
        got = await asyncio.gather(*(c.get("a", maker("a", delay=0.05)) for _ in range(5)))
        assert got == ["value-a"] * 5 and calls == ["a"] and (c.misses, c.shared) == (1, 4)
        assert await c.get("a", maker("a")) == "value-a" and c.hits == 1 and calls == ["a"]
        await c.get("b", maker("b"))
        await c.get("a", maker("a"))  # a is now the most recently used
        await c.get("c", maker("c"))  # over two items: b goes
        assert len(c) == 2 and c.bytes == 20
        await c.get("b", maker("b"))
        assert calls == ["a", "b", "c", "b"]
        await c.get("big", maker("big", size=100))  # larger than the whole cache: not kept
        assert len(c) == 2 and c.bytes == 20
        await c.get("d", maker("d", size=20))  # byte bound: one 10-byte entry has to go
        assert c.bytes <= 25
        # a failure reaches every waiter and is not kept: the next request tries again
        with pytest.raises(ValueError):
            await asyncio.gather(*(c.get("x", maker("x", fail=True, delay=0.02)) for _ in range(3)))
        assert calls.count("x") == 1
        with pytest.raises(ValueError):
            await c.get("x", maker("x", fail=True))
        assert calls.count("x") == 2
        off = PreparedCache(max_items=0, max_bytes=0)
        await off.get("a", maker("a"))
        await off.get("a", maker("a"))
        assert len(off) == 0 and off.misses == 2

    run(main())


def test_feature_cache_settings_are_validated():
    from musilingo.errors import ConfigError

    assert ServeSettings(feature_cache_items=0).feature_cache_items == 0  # 0 = off
    for bad in ({"feature_cache_items": -1}, {"feature_cache_mb": -1.0}):
        with pytest.raises(ConfigError):
            ServeSettings(**bad)
