"""JSON shapes of the HTTP API (pydantic models): they are the OpenAPI schema's responses.

Only data shapes live here; the routes are in ``app.py`` and the work in ``pipeline.py``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Timings(BaseModel):
    """Where the time of one request went, in milliseconds (model stages include batch waits)."""

    decode_ms: float = Field(0.0, description="decoding and resampling the upload")
    encode_ms: float = Field(0.0, description="music encoder + pooling, incl. waiting for a batch")
    generate_ms: float = Field(0.0, description="LLM generation, incl. waiting for a batch")
    total_ms: float = Field(0.0, description="the whole request, from its first byte of work")


class WindowAnswer(BaseModel):
    """The answer about one window of a long file."""

    start_s: float
    end_s: float
    text: str


class AnswerResponse(BaseModel):
    """The answer of ``/v1/caption`` and ``/v1/ask``."""

    text: str = Field(description="the answer (for a long file: about the whole track)")
    question: str
    source: str = Field(description="the uploaded file's name (a label only)")
    duration_s: float
    windows: list[WindowAnswer] = Field(
        default_factory=list, description="per-window answers; empty when the file is one window")
    notes: list[str] = Field(default_factory=list, description="e.g. 'the audio is silent'")
    timings: Timings


class ChatResponse(BaseModel):
    """One reply of ``/v1/chat``."""

    conversation_id: str = Field(description="send it back with the next message")
    text: str
    turn: int = Field(description="1 for the first message of the conversation, then 2, 3, ...")
    source: str
    duration_s: float
    expires_in_s: float = Field(description="the conversation is forgotten after this much idle time")
    notes: list[str] = Field(default_factory=list)
    timings: Timings


class KindStats(BaseModel):
    calls: int
    items: int
    largest_batch: int
    busy_s: float


class HealthResponse(BaseModel):
    """``GET /health``."""

    status: str
    model: str
    device: str
    trained: bool = Field(description="False: the projection is untrained; answers ignore the audio")
    version: str
    uptime_s: float
    queue_length: int = Field(description="model work items waiting for the worker")
    active_requests: int = Field(description="API requests in the server now")
    max_queue: int
    conversations: int
    batches: dict[str, KindStats] = Field(description="per kind of work: encode, generate")


class ErrorResponse(BaseModel):
    """Every error: a short machine-readable code and a sentence for people."""

    error: str = Field(description="e.g. bad_audio, upload_too_large, audio_too_long, queue_full")
    detail: str
