"""The FastAPI app: routes, JSON errors, limits and the browser page; nothing else.

``create_app(model, settings)`` serves one already-loaded :class:`~musilingo.model.MusiLingo`:

- ``POST /v1/caption``  audio ``file`` -> caption (per window too for long files)
- ``POST /v1/ask``      audio ``file`` + ``question`` -> answer
- ``POST /v1/chat``     ``message`` + ``file`` (first turn) or ``conversation_id`` (later turns)
- ``DELETE /v1/chat/{conversation_id}``  forget a conversation
- ``GET /v1/limits``    what the server accepts (upload MiB, audio seconds, message length, ...)
- ``GET /health``       model, device, queue length, uptime, batch counters, caption instruction
- ``GET /openapi.json`` the schema; ``GET /`` the page (``static/``, no external CDN)

Requests only ever carry uploads and text: no route takes a server-side path. Every error is JSON
``{"error": code, "detail": sentence}``. Swagger/ReDoc pages are off (they load from a CDN).
The page refers to everything by relative URLs, so the app also works mounted under a path prefix
(``Mount("/musilingo", app)`` or a reverse proxy with ``--root-path``). The work itself is in
``pipeline.py``, the limits in ``limits.py`` (enforced) and ``settings.py`` (their values).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import soundfile as sf
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from musilingo import __version__
from musilingo.audio import AUDIO_EXTENSIONS
from musilingo.model import MusiLingo
from musilingo.prompts import CAPTION_INSTRUCTION
from musilingo.serve.limits import InFlight, RequestLimits
from musilingo.serve.pipeline import InferenceService, ServeError
from musilingo.serve.schemas import (
    AnswerResponse,
    ChatResponse,
    ErrorResponse,
    HealthResponse,
    KindStats,
    LimitsResponse,
)
from musilingo.serve.settings import ServeSettings

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"

_ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in {
    404: "unknown or expired conversation",
    413: "upload or audio too large (upload_too_large, audio_too_long)",
    422: "bad audio or invalid request (bad_audio, invalid_request)",
    503: "queue full (queue_full); see the Retry-After header",
    504: "the model did not answer in time (timeout)",
}.items()}

# extensions libsndfile reads itself (by its format name); the rest of AUDIO_EXTENSIONS needs ffmpeg
_SNDFILE_FORMAT = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG", ".opus": "OGG",
                   ".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF", ".au": "AU", ".w64": "W64",
                   ".caf": "CAF"}

AudioFile = Annotated[UploadFile, File(description="audio: wav, flac, ogg, mp3, m4a, webm...")]


def create_app(model: MusiLingo, settings: ServeSettings | None = None) -> FastAPI:
    """A FastAPI app serving ``model`` under ``settings`` (defaults when None)."""
    settings = settings or ServeSettings()
    service = InferenceService(model, settings)
    in_flight = InFlight()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(title="MusiLingo", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Captions, answers and chats about music audio uploads.")
    app.state.service = service
    app.state.settings = settings
    app.state.in_flight = in_flight

    app.add_middleware(RequestLimits, in_flight=in_flight, max_queue=settings.max_queue,
                       max_body_bytes=settings.max_body_bytes,
                       retry_after_s=settings.retry_after_s, max_upload_mb=settings.max_upload_mb,
                       exempt=("/v1/limits",))
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["*"])

    _add_error_handlers(app)

    @app.post("/v1/caption", response_model=AnswerResponse, responses=_ERRORS, tags=["answers"])
    async def caption(file: AudioFile) -> AnswerResponse:
        """Caption an uploaded clip; long files are captioned per window and as a whole."""
        return await service.answer(await _read(service, file), file.filename, CAPTION_INSTRUCTION)

    @app.post("/v1/ask", response_model=AnswerResponse, responses=_ERRORS, tags=["answers"])
    async def ask(file: AudioFile, question: Annotated[str, Form()]) -> AnswerResponse:
        """Answer a question about an uploaded clip."""
        service.check_text(question, "question")
        return await service.answer(await _read(service, file), file.filename, question)

    @app.post("/v1/chat", response_model=ChatResponse, responses=_ERRORS, tags=["chat"])
    async def chat(message: Annotated[str, Form()],
                   conversation_id: Annotated[str | None, Form()] = None,
                   file: Annotated[UploadFile | None, File()] = None) -> ChatResponse:
        """One chat message. The first carries the audio ``file`` and starts a conversation; later
        ones send the returned ``conversation_id`` instead."""
        data = await _read(service, file) if file is not None else None
        return await service.chat(message, conversation_id, data,
                                  file.filename if file is not None else None)

    @app.delete("/v1/chat/{conversation_id}", status_code=204, responses=_ERRORS, tags=["chat"])
    async def end_chat(conversation_id: str) -> None:
        """Forget a conversation now (it would expire by itself when idle)."""
        if not service.conversations.delete(conversation_id):
            raise ServeError(404, "unknown_conversation", "this conversation is unknown or has expired")

    extensions = audio_extensions()

    @app.get("/v1/limits", response_model=LimitsResponse, tags=["service"])
    async def get_limits() -> LimitsResponse:
        """What this server accepts, to check a file before uploading it (never queued)."""
        return limits_of(settings, extensions)

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> HealthResponse:
        """Model, device, queue and uptime; answers even while the model is busy."""
        return HealthResponse(
            status="ok", model=settings.model, device=str(model.device),
            trained=bool(model.config.trained), version=__version__,
            caption_instruction=CAPTION_INSTRUCTION,
            uptime_s=round(time.monotonic() - service.started, 1),
            queue_length=service.batcher.pending(), active_requests=in_flight.active,
            max_queue=settings.max_queue, conversations=len(service.conversations),
            batches={k: KindStats(**vars(v)) for k, v in service.batcher.stats.items()})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def audio_extensions(ffmpeg: bool | None = None) -> list[str]:
    """The extensions uploads may have: all of ``AUDIO_EXTENSIONS`` with ffmpeg installed, else
    those libsndfile reads itself."""
    if ffmpeg is None:
        ffmpeg = shutil.which("ffmpeg") is not None
    if ffmpeg:
        return list(AUDIO_EXTENSIONS)
    formats = {name.upper() for name in sf.available_formats()}
    return [ext for ext in AUDIO_EXTENSIONS if _SNDFILE_FORMAT.get(ext) in formats]


def limits_of(settings: ServeSettings, extensions: list[str] | None = None) -> LimitsResponse:
    """The ``/v1/limits`` answer for ``settings`` (``extensions``: :func:`audio_extensions`)."""
    extensions = audio_extensions() if extensions is None else extensions
    video = any(ext in extensions for ext in (".mp4", ".webm", ".mka"))
    return LimitsResponse(
        max_upload_mb=settings.max_upload_mb, max_upload_bytes=settings.max_upload_bytes,
        max_duration_s=settings.max_duration_s, max_question_chars=settings.max_question_chars,
        max_turns=settings.max_turns, max_conversations=settings.max_conversations,
        conversation_ttl_s=settings.conversation_ttl_s,
        request_timeout_s=settings.request_timeout_s, max_queue=settings.max_queue,
        retry_after_s=settings.retry_after_s, audio_extensions=extensions,
        audio_mime_types=["audio/*", "video/*"] if video else ["audio/*"])


async def _read(service: InferenceService, file: UploadFile) -> bytes:
    """The upload's bytes; its size was already bounded while the body streamed in."""
    if file.size is not None:
        service.check_upload_size(file.size)
    return await file.read()


def _add_error_handlers(app: FastAPI) -> None:
    def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return error(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else e.get("msg", "invalid"))
        return error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        return error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                     getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, "internal_error", "the server failed on this request; see its log")
