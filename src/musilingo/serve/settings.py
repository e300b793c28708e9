"""Settings of the HTTP service: one typed dataclass, validated on construction.

Every limit the server enforces lives here (upload size, audio duration, queue length, request
timeout, conversation bounds) so tests can shrink them to trigger each limit cheaply. This module
does not read the environment or the command line; ``command.py`` builds the settings from the
``musilingo serve`` arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musilingo.errors import ConfigError
from musilingo.generation import Decoding

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries, headers and the text fields around the file


@dataclass
class ServeSettings:
    """How ``musilingo serve`` batches work and which limits it enforces."""

    model: str = "default"
    """model folder or preset the server was started with (shown by /health)"""
    max_batch: int = 8
    """most items (uploads to encode, or answers to generate) run in one model call"""
    max_wait_ms: float = 20.0
    """how long the oldest waiting item may wait for others to join its batch"""
    max_queue: int = 64
    """most requests admitted at once (uploading, waiting or running); more get 503 + Retry-After"""
    retry_after_s: int = 2
    """the Retry-After value (seconds) sent with a 503 when the queue is full"""
    request_timeout_s: float = 120.0
    """a request whose decode + encode + generate takes longer gets 504"""
    max_upload_mb: float = 50.0
    """largest accepted audio upload in MiB (413 beyond, checked while the body streams in)"""
    max_duration_s: float = 600.0
    """longest accepted audio in seconds (413 beyond)"""
    max_question_chars: int = 2000
    """longest accepted question / chat message in characters (422 beyond)"""
    max_conversations: int = 256
    """conversations kept in memory; the least recently used one is dropped beyond"""
    max_turns: int = 16
    """turns of history a conversation keeps (older turns are forgotten, the audio stays)"""
    conversation_ttl_min: float = 30.0
    """a conversation idle for this many minutes expires (404 on its next message)"""
    decoding: Decoding = "greedy"
    """generation preset: greedy | paper | beam (see ``GenerationOptions.named``)"""
    max_new_tokens: int | None = None
    """longest answer in tokens (None = the model's default)"""
    whole_track: bool = True
    """for files of several windows, also answer about the whole track (not only per window)"""
    feature_cache_items: int = 64
    """uploads whose decoded, encoded features are kept (keyed by the sha256 of the upload's bytes
    and the model's feature settings), so a follow-up request about the same file does not decode
    or encode it again, and concurrent requests for one file share one decode + encode; the least
    recently used is dropped beyond. 0 = no cache: every upload is decoded and encoded"""
    feature_cache_mb: float = 256.0
    """most MiB of features the cache holds (features only; the uploads are not kept)"""
    cors_origins: list[str] = field(default_factory=list)
    """browser origins allowed to call the API from other sites; empty = CORS off"""

    def __post_init__(self) -> None:
        positive = {
            "max_batch": self.max_batch, "max_queue": self.max_queue,
            "request_timeout_s": self.request_timeout_s, "max_upload_mb": self.max_upload_mb,
            "max_duration_s": self.max_duration_s, "max_question_chars": self.max_question_chars,
            "max_conversations": self.max_conversations, "max_turns": self.max_turns,
            "conversation_ttl_min": self.conversation_ttl_min,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"serve setting {name} must be positive, got {value}")
        if self.feature_cache_items < 0 or self.feature_cache_mb < 0:
            raise ConfigError("serve settings feature_cache_items and feature_cache_mb must be >= 0")
        if self.max_wait_ms < 0:
            raise ConfigError(f"serve setting max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.retry_after_s < 0:
            raise ConfigError(f"serve setting retry_after_s must be >= 0, got {self.retry_after_s}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError("serve setting max_new_tokens must be >= 1")
        if "*" in self.cors_origins and len(self.cors_origins) > 1:
            raise ConfigError("cors_origins: '*' allows every origin; give it alone")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: the upload plus the multipart framing and text fields."""
        return self.max_upload_bytes + FORM_OVERHEAD_BYTES

    @property
    def conversation_ttl_s(self) -> float:
        return self.conversation_ttl_min * 60.0
