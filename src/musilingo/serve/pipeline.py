"""The work behind each endpoint: decode the upload, encode it, generate, shape the answer.

:class:`InferenceService` wraps the one :class:`~musilingo.model.MusiLingo` inference object.
Decoding (libsndfile / ffmpeg + resampling, no torch) runs on a small thread pool; encoding
(``model.prepare``) and generation (``model.generate``) go through one :class:`Batcher`, so
concurrent requests share encoder and LLM calls on the single model thread. Long files are
answered per window plus once for the whole track, as ``MusiLingo.iter_answers`` does; chats keep
the whole-track features and their turns in a :class:`ConversationStore`, as ``Chat`` does.

Uploads are prepared once per content: :class:`PreparedCache` keys a decoded, encoded upload by the
sha256 of its bytes and the model's feature settings, so a follow-up question about the same file
neither decodes nor encodes it again, and concurrent requests for one file share a single decode +
encode. Generation batches answer identical greedy prompts (same clip, same turns) once.

Problems are raised as :class:`ServeError` (an HTTP status, a short code, a sentence); this module
does not know about routes or JSON encoding.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import soundfile as sf
import torch

from musilingo.audio import SILENCE_PEAK, decode_bytes
from musilingo.errors import AudioError, AudioTooLongError
from musilingo.features import key_hash
from musilingo.generation import GenerationOptions
from musilingo.model import MusiLingo, PreparedAudio
from musilingo.prompts import Turn
from musilingo.serve.batcher import Batcher
from musilingo.serve.conversations import Conversation, ConversationStore
from musilingo.serve.schemas import (
    AnswerResponse,
    ChatResponse,
    ChordSpan,
    Timings,
    WindowAnswer,
)
from musilingo.serve.settings import ServeSettings

DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))


def _chord_spans(prepared: PreparedAudio) -> list[ChordSpan] | None:
    """The chords of the whole track from its windows' facts (None when none were measured)."""
    from musilingo.analysis.facts import merge_facts
    from musilingo.music import chord_symbol

    measured = [f for f in prepared.facts if f is not None]
    chords = merge_facts(measured).chords if measured else None
    if chords is None:
        return None
    return [ChordSpan(start_s=c.start, end_s=c.end, chord=chord_symbol(c.label), label=c.label,
                      confidence=c.confidence) for c in chords.segments]


class ServeError(Exception):
    """A request problem with its HTTP status: becomes ``{"error": code, "detail": detail}``."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def upload_label(filename: str | None) -> str:
    """A safe display name for an upload: the base name only, printable, at most 120 chars."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:120] or "upload"


class PreparedCache:
    """Prepared uploads by content key, least recently used dropped first beyond ``max_items``
    entries or ``max_bytes`` of feature tensors; concurrent requests for a key that is being
    prepared wait for that one preparation (single flight). Failures are not kept: the next
    request tries again. Event-loop side only (not thread-safe)."""

    def __init__(self, max_items: int, max_bytes: int):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.hits = self.misses = self.shared = 0  # shared: waited for another request's work
        self.bytes = 0
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._pending: dict[str, asyncio.Future] = {}

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str, make: Callable[[], Awaitable[tuple[Any, int]]]) -> Any:
        """The value for ``key``; ``make()`` returns ``(value, size in bytes)`` on a miss."""
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]
        task = self._pending.get(key)
        if task is not None:
            self.shared += 1
        else:
            self.misses += 1
            task = asyncio.ensure_future(make())
            self._pending[key] = task
            task.add_done_callback(lambda t, key=key: self._settle(key, t))
        # shield: a waiter that times out does not cancel the work the others wait for
        return (await asyncio.shield(task))[0]

    def _settle(self, key: str, task: asyncio.Future) -> None:
        self._pending.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        value, size = task.result()
        if self.max_items == 0 or size > self.max_bytes:
            return
        self._items[key] = (value, size)
        self.bytes += size
        while len(self._items) > self.max_items or self.bytes > self.max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped


class InferenceService:
    """Decode -> encode -> generate for the HTTP routes, batched across concurrent requests."""

    def __init__(self, model: MusiLingo, settings: ServeSettings):
        self.model = model
        self.settings = settings
        self.options = GenerationOptions.named(
            settings.decoding, settings.max_new_tokens or model.config.max_new_tokens)
        self.batcher = Batcher({"encode": self._encode_batch, "generate": self._generate_batch},
                               max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms)
        self.conversations = ConversationStore(settings.max_conversations, settings.max_turns,
                                               settings.conversation_ttl_s)
        self._decoder = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="musilingo-decode")
        self.prepared = PreparedCache(settings.feature_cache_items,
                                      int(settings.feature_cache_mb * 1024 * 1024))
        self._spec_key = key_hash(model.feature_spec.key())
        self.started = time.monotonic()

    def close(self) -> None:
        self.batcher.close()
        self._decoder.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ model thread (batched)
    def _encode_batch(self, items: list[tuple[np.ndarray, int, str]]) -> list[PreparedAudio | AudioError]:
        return self.model.prepare(items, batch_size=self.settings.max_batch,
                                  max_duration_s=self.settings.max_duration_s)

    def _generate_batch(self, items: list[tuple[torch.Tensor, list[Turn], str | None]]) -> list[str]:
        """Answers for (features, turns, facts line) items."""
        if self.options.do_sample:
            return self.model.generate([f for f, _, _ in items], [t for _, t, _ in items],
                                       self.options, facts=[x for _, _, x in items])
        # greedy answers are a function of (features, turns, facts): identical prompts in one
        # batch (the same cached clip, the same question) are generated once
        slot: dict[tuple, int] = {}
        unique: list[tuple[torch.Tensor, list[Turn], str | None]] = []
        index = []
        for f, turns, facts in items:
            key = (id(f), tuple((t.question, t.answer) for t in turns), facts)
            if key not in slot:
                slot[key] = len(unique)
                unique.append((f, turns, facts))
            index.append(slot[key])
        texts = self.model.generate([f for f, _, _ in unique], [t for _, t, _ in unique],
                                    self.options, facts=[x for _, _, x in unique])
        return [texts[i] for i in index]

    # ------------------------------------------------------------------ request side
    async def answer(self, data: bytes, filename: str | None, question: str) -> AnswerResponse:
        """Answer ``question`` about one upload (per window too when it is long)."""
        question = self.check_text(question, "question")
        return await self._within_timeout(self._answer(data, upload_label(filename), question))

    async def chat(self, message: str, conversation_id: str | None, data: bytes | None,
                   filename: str | None) -> ChatResponse:
        """Answer one chat message; the first one (no id) carries the audio and starts a chat."""
        message = self.check_text(message, "message")
        if conversation_id:
            if data is not None:
                raise ServeError(422, "invalid_request",
                                 "a conversation keeps the audio of its first message; send "
                                 "`file` only without `conversation_id` to start a new one")
            conv = self.conversations.get(conversation_id)
            if conv is None:
                raise ServeError(404, "unknown_conversation",
                                 "this conversation is unknown or has expired (conversations "
                                 f"end after {self.settings.conversation_ttl_min:g} minutes idle);"
                                 " start a new one by sending the audio again")
            return await self._within_timeout(self._continue_chat(conv, message))
        if data is None:
            raise ServeError(422, "invalid_request",
                             "the first message of a conversation needs an audio `file`")
        return await self._within_timeout(self._start_chat(data, upload_label(filename), message))

    def check_text(self, text: str, what: str) -> str:
        text = text.strip()
        if not text:
            raise ServeError(422, "invalid_request", f"the {what} is empty")
        if len(text) > self.settings.max_question_chars:
            raise ServeError(422, "invalid_request",
                             f"the {what} is {len(text)} characters long; the limit is "
                             f"{self.settings.max_question_chars}")
        return text

    def check_upload_size(self, size: int) -> None:
        if size > self.settings.max_upload_bytes:
            raise ServeError(413, "upload_too_large",
                             f"the upload is larger than the limit of "
                             f"{self.settings.max_upload_mb:g} MiB; send a shorter or more "
                             "compressed file")

    async def _within_timeout(self, work: Any) -> Any:
        try:
            return await asyncio.wait_for(work, self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise ServeError(504, "timeout",
                             f"the model did not answer within {self.settings.request_timeout_s:g} s;"
                             " the server may be busy, try again or send a shorter file") from None

    async def _answer(self, data: bytes, name: str, question: str) -> AnswerResponse:
        t0 = time.perf_counter()
        timings = Timings()
        prepared, notes = await self._prepare(data, name, timings)
        plan = self.model.answer_plan(prepared.features, whole_track=self.settings.whole_track)
        lines = [self.model.facts_line(prepared.facts, w) for w, _ in plan]
        t1 = time.perf_counter()
        texts = await self.batcher.submit_many(
            "generate", [(f, [Turn(question)], x) for (_, f), x in zip(plan, lines)])
        timings.generate_ms = _ms(time.perf_counter() - t1)
        windows = [WindowAnswer(start_s=prepared.spans[w][0], end_s=prepared.spans[w][1], text=t)
                   for (w, _), t in zip(plan, texts) if w is not None]
        text = next((t for (w, _), t in zip(plan, texts) if w is None), "")
        timings.total_ms = _ms(time.perf_counter() - t0)
        return AnswerResponse(text=text, question=question, source=name,
                              duration_s=round(prepared.duration_s, 3), windows=windows,
                              notes=notes, facts=self.model.facts_line(prepared.facts, None),
                              chords=_chord_spans(prepared), timings=timings)

    async def _start_chat(self, data: bytes, name: str, message: str) -> ChatResponse:
        t0 = time.perf_counter()
        timings = Timings()
        prepared, notes = await self._prepare(data, name, timings)
        # answered as /v1/caption and /v1/ask answer (per window too); the conversation goes on
        # from the whole track and its answer
        plan = self.model.answer_plan(prepared.features, whole_track=True)
        lines = [self.model.facts_line(prepared.facts, w) for w, _ in plan]
        t1 = time.perf_counter()
        texts = await self.batcher.submit_many(
            "generate", [(f, [Turn(message)], x) for (_, f), x in zip(plan, lines)])
        timings.generate_ms = _ms(time.perf_counter() - t1)
        reply = next(t for (w, _), t in zip(plan, texts) if w is None)
        windows = [WindowAnswer(start_s=prepared.spans[w][0], end_s=prepared.spans[w][1], text=t)
                   for (w, _), t in zip(plan, texts) if w is not None]
        conv = self.conversations.create(name, prepared.duration_s,
                                         self.model.track_features(prepared.features),
                                         self.model.facts_line(prepared.facts, None))
        self.conversations.record(conv, message, reply)
        timings.total_ms = _ms(time.perf_counter() - t0)
        return self._chat_response(conv, reply, notes, timings, windows)

    async def _continue_chat(self, conv: Conversation, message: str) -> ChatResponse:
        t0 = time.perf_counter()
        timings = Timings()
        async with conv.lock:  # one message at a time, so each sees the previous reply
            turns = self.conversations.prompt_turns(conv, message)
            reply = await self.batcher.submit("generate", (conv.features, turns, conv.facts))
            self.conversations.record(conv, message, reply)
        timings.generate_ms = timings.total_ms = _ms(time.perf_counter() - t0)
        return self._chat_response(conv, reply, [], timings)

    def _chat_response(self, conv: Conversation, reply: str, notes: list[str],
                       timings: Timings, windows: list[WindowAnswer] | None = None) -> ChatResponse:
        return ChatResponse(conversation_id=conv.id, text=reply, turn=conv.answered,
                            source=conv.source, duration_s=round(conv.duration_s, 3),
                            expires_in_s=round(self.conversations.expires_in_s(conv), 1),
                            windows=windows or [], notes=notes, facts=conv.facts, timings=timings)

    async def _prepare(self, data: bytes, name: str, timings: Timings) -> tuple[PreparedAudio, list[str]]:
        """The prepared audio and notes for the user: from :attr:`prepared` when this content was
        seen (timings then show no decode or encode), else decoded and encoded."""
        self.check_upload_size(len(data))
        if self.settings.feature_cache_items == 0:  # no cache: every upload on its own
            return await self._decode_and_encode(data, name, timings)
        key = f"{hashlib.sha256(data).hexdigest()}:{self._spec_key}:{self.settings.max_duration_s:g}"

        async def make() -> tuple[tuple[PreparedAudio, list[str]], int]:
            prepared, notes = await self._decode_and_encode(data, name, timings)
            return (prepared, notes), sum(f.numel() * f.element_size() for f in prepared.features)

        return await self.prepared.get(key, make)

    async def _decode_and_encode(self, data: bytes, name: str,
                                 timings: Timings) -> tuple[PreparedAudio, list[str]]:
        """Decode (thread pool) then encode (batched)."""
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        samples = await loop.run_in_executor(self._decoder, self._decode, data, name)
        timings.decode_ms = _ms(time.perf_counter() - t0)
        notes = []
        if float(np.abs(samples).max()) < SILENCE_PEAK:
            notes.append("the audio is silent")
        t1 = time.perf_counter()
        try:
            prepared = await self.batcher.submit(
                "encode", (samples, self.model.encoder.sample_rate, name))
        except AudioError as e:
            raise _audio_error(e) from None
        timings.encode_ms = _ms(time.perf_counter() - t1)
        return prepared, notes

    def _decode(self, data: bytes, name: str) -> np.ndarray:
        limit = self.settings.max_duration_s
        try:  # refuse an over-long file from its header, before decoding it
            info = sf.info(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - not a libsndfile format; checked after decoding
            info = None
        if info is not None and info.duration > limit:
            raise _too_long(info.duration, limit)
        try:
            samples, _ = decode_bytes(data, name, sample_rate=self.model.encoder.sample_rate,
                                      max_duration_s=limit)
        except AudioError as e:
            raise _audio_error(e) from None
        return samples


_SERVER_PATH = re.compile(r"(?<![\w.])/[^\s:'\"]+")  # e.g. a decoder's temporary file in a message


def _audio_error(e: AudioError) -> ServeError:
    problem = _SERVER_PATH.sub("<upload>", e.problem)  # never show server-side paths to clients
    if isinstance(e, AudioTooLongError):
        return ServeError(413, "audio_too_long", f"the audio is {problem}")
    return ServeError(422, "bad_audio", f"the file could not be used as audio: {problem}")


def _too_long(duration_s: float, limit_s: float) -> ServeError:
    return ServeError(413, "audio_too_long",
                      f"the audio is {duration_s:.1f} s long; this server accepts at most "
                      f"{limit_s:g} s (send a shorter excerpt)")


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)
