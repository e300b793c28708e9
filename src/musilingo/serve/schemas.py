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


class ChordSpan(BaseModel):
    """One stretch of the track with one chord (``musilingo analyze``'s chord estimate)."""

    start_s: float
    end_s: float
    chord: str = Field(description="lead-sheet symbol: 'C', 'F#m', or 'N.C.' (no chord)")
    label: str = Field(description="the same in Harte syntax: 'C:maj', 'F#:min', 'N'")
    confidence: float = Field(description="mean posterior over the span (not calibrated)")


class AnswerResponse(BaseModel):
    """The answer of ``/v1/caption`` and ``/v1/ask``."""

    text: str = Field(description="the answer (for a long file: about the whole track)")
    question: str
    source: str = Field(description="the uploaded file's name (a label only)")
    duration_s: float
    windows: list[WindowAnswer] = Field(
        default_factory=list, description="per-window answers; empty when the file is one window")
    notes: list[str] = Field(default_factory=list, description="e.g. 'the audio is silent'")
    facts: str | None = Field(None, description="the measured-facts line the model read "
                              "(null for a model that reads none)")
    chords: list[ChordSpan] | None = Field(
        None, description="the measured chords over the whole track (null for a model that reads "
                          "no facts: only those have the audio analysed)")
    timings: Timings


class ChatResponse(BaseModel):
    """One reply of ``/v1/chat``."""

    conversation_id: str = Field(description="send it back with the next message")
    text: str
    turn: int = Field(description="1 for the first message of the conversation, then 2, 3, ...")
    source: str
    duration_s: float
    expires_in_s: float = Field(description="the conversation is forgotten after this much idle time")
    windows: list[WindowAnswer] = Field(
        default_factory=list,
        description="first message about audio longer than one window: the answer per window "
                    "(``text`` is about the whole track, which later messages continue from)")
    notes: list[str] = Field(default_factory=list)
    facts: str | None = Field(None, description="the measured-facts line the model read "
                              "(null for a model that reads none)")
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
    caption_instruction: str = Field(
        "", description="the instruction /v1/caption answers; sent as the first /v1/chat message "
        "it gives the same caption and starts a conversation about the upload")
    uptime_s: float
    queue_length: int = Field(description="model work items waiting for the worker")
    active_requests: int = Field(description="API requests in the server now")
    max_queue: int
    conversations: int
    batches: dict[str, KindStats] = Field(description="per kind of work: encode, generate")


class LimitsResponse(BaseModel):
    """``GET /v1/limits``: what this server accepts, so clients can check before uploading."""

    max_upload_mb: float = Field(description="largest accepted upload in MiB (413 upload_too_large)")
    max_upload_bytes: int = Field(description="the same limit in bytes")
    max_duration_s: float = Field(description="longest accepted audio in seconds (413 audio_too_long)")
    max_question_chars: int = Field(
        description="longest accepted question or chat message, in characters (422 beyond)")
    max_turns: int = Field(
        description="turns of history a conversation keeps; older turns are forgotten, not refused")
    max_conversations: int = Field(
        description="conversations kept at once; the least recently used one is dropped beyond")
    conversation_ttl_s: float = Field(
        description="a conversation idle this long is forgotten (404 unknown_conversation)")
    request_timeout_s: float = Field(description="a request taking longer gets 504 timeout")
    max_queue: int = Field(description="API requests admitted at once (503 queue_full beyond)")
    retry_after_s: int = Field(description="the Retry-After sent with a 503")
    audio_extensions: list[str] = Field(
        description="file name extensions this server can decode, e.g. '.wav' (a hint: the "
        "content decides, not the name)")
    audio_mime_types: list[str] = Field(
        description="media type patterns for a file chooser's accept attribute, e.g. 'audio/*'")


class ErrorResponse(BaseModel):
    """Every error: a short machine-readable code and a sentence for people."""

    error: str = Field(description="e.g. bad_audio, upload_too_large, audio_too_long, queue_full")
    detail: str
