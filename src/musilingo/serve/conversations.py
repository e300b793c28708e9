"""In-memory chat history for ``POST /v1/chat``: bounded in count, turns and idle time.

A conversation keeps the pooled features of its audio (sent once, with the first message) and its
last ``max_turns`` question/answer turns. The store holds at most ``max_conversations`` (the least
recently used is dropped first) and forgets a conversation idle for ``ttl_s`` seconds. Ids are
random (``secrets.token_urlsafe``) so they cannot be guessed. Nothing is written to disk; a
restart forgets everything. This module knows nothing about HTTP or how answers are generated.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from musilingo.prompts import Turn


@dataclass
class Conversation:
    """One chat about one clip."""

    id: str
    source: str  # the uploaded file's name (a label only)
    duration_s: float
    features: torch.Tensor  # [n_tokens, feature_dim], the whole track
    facts: str | None = None  # the measured-facts line (models that read facts)
    turns: list[Turn] = field(default_factory=list)
    answered: int = 0  # messages answered so far (turns beyond max_turns are forgotten)
    last_used: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one message at a time


class ConversationStore:
    """LRU + idle-expiry map from conversation id to :class:`Conversation`."""

    def __init__(self, max_conversations: int = 256, max_turns: int = 16, ttl_s: float = 1800.0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_conversations = max_conversations
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[str, Conversation] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._items)

    def create(self, source: str, duration_s: float, features: torch.Tensor,
               facts: str | None = None) -> Conversation:
        """Start a conversation (dropping the least recently used one when full)."""
        self._expire()
        while len(self._items) >= self.max_conversations:
            self._items.popitem(last=False)
        conv = Conversation(secrets.token_urlsafe(16), source, duration_s, features, facts,
                            last_used=self._clock())
        self._items[conv.id] = conv
        return conv

    def get(self, conversation_id: str) -> Conversation | None:
        """The live conversation with this id (marked as just used), or None."""
        self._expire()
        conv = self._items.get(conversation_id)
        if conv is not None:
            conv.last_used = self._clock()
            self._items.move_to_end(conversation_id)
        return conv

    def delete(self, conversation_id: str) -> bool:
        return self._items.pop(conversation_id, None) is not None

    def prompt_turns(self, conv: Conversation, message: str) -> list[Turn]:
        """The history to send with a new message: at most ``max_turns`` turns, the new one last."""
        keep = conv.turns[-(self.max_turns - 1):] if self.max_turns > 1 else []
        return keep + [Turn(message)]

    def record(self, conv: Conversation, message: str, reply: str) -> None:
        """Append an answered turn, forgetting the oldest beyond ``max_turns``."""
        conv.turns = (conv.turns + [Turn(message, reply)])[-self.max_turns:]
        conv.answered += 1
        conv.last_used = self._clock()

    def expires_in_s(self, conv: Conversation) -> float:
        return max(0.0, conv.last_used + self.ttl_s - self._clock())

    def _expire(self) -> None:
        now = self._clock()
        # items are in least-recently-used order, so expired ones are at the front
        while self._items:
            oldest = next(iter(self._items.values()))
            if now - oldest.last_used < self.ttl_s:
                break
            self._items.popitem(last=False)
