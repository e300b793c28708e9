"""``musilingo serve``: load the model once and run the HTTP service with uvicorn.

:func:`serve_command` is the typed entry the CLI calls (tests and scripts may call it too);
:func:`add_serve_command` adds the ``serve`` subcommand to the CLI's argparse subparsers. FastAPI
and uvicorn are imported only when the server starts, so the CLI stays light. This module does
not define routes (``app.py``) or limits (``settings.py``).
"""

from __future__ import annotations

import argparse
import logging

from musilingo.serve.settings import LOOPBACK_HOSTS, ServeSettings

log = logging.getLogger(__name__)


def serve_command(model: str = "default", host: str = "127.0.0.1", port: int = 8000,
                  device: str | None = None, max_batch: int = 8, max_wait_ms: int = 20,
                  max_upload_mb: float = 50, max_duration_s: float = 600, max_queue: int = 64,
                  request_timeout_s: float = 120, max_conversations: int = 256,
                  max_turns: int = 16, conversation_ttl_min: float = 30,
                  cors_origins: list[str] | None = None, decoding: str = "greedy",
                  max_new_tokens: int | None = None, llm: str | None = None,
                  log_level: str = "info") -> None:
    """Serve ``model`` over HTTP at ``host:port`` until interrupted (see ``ServeSettings``).

    Binds to the loopback interface by default; the API has no authentication, so put it behind
    a proxy that has one before listening on other interfaces.
    """
    import uvicorn

    from musilingo.model import load_model
    from musilingo.serve.app import create_app

    settings = ServeSettings(
        model=model, max_batch=max_batch, max_wait_ms=max_wait_ms, max_upload_mb=max_upload_mb,
        max_duration_s=max_duration_s, max_queue=max_queue, request_timeout_s=request_timeout_s,
        max_conversations=max_conversations, max_turns=max_turns,
        conversation_ttl_min=conversation_ttl_min, cors_origins=list(cors_origins or []),
        decoding=decoding, max_new_tokens=max_new_tokens)
    m, notes = load_model(model, device, llm)
    for note in notes:
        log.warning("%s", note)
    if host not in LOOPBACK_HOSTS:
        log.warning("listening on %s: the API has no authentication; anyone who can reach this "
                    "address can use the model", host)
    uvicorn.run(create_app(m, settings), host=host, port=port, log_level=log_level)


def add_serve_command(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the CLI (``cli._EXTRA_COMMANDS.append(add_serve_command)``)."""
    defaults = ServeSettings()
    p = subparsers.add_parser("serve", help="HTTP API and browser page for one model")
    p.add_argument("--model", default="default",
                   help="model folder or preset: default (offline), paper, tiny (random, for tests)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--llm", default=None, help="override the LLM (folder or hub id)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default loopback only; the API has no auth)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=int, default=defaults.max_batch,
                   help="most uploads / answers per model call (1 = no batching)")
    p.add_argument("--max-wait-ms", type=int, default=int(defaults.max_wait_ms),
                   help="how long a request may wait for others to share its batch")
    p.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb)
    p.add_argument("--max-duration-s", type=float, default=defaults.max_duration_s,
                   help="longest accepted audio in seconds")
    p.add_argument("--max-queue", type=int, default=defaults.max_queue,
                   help="most requests in the server at once (503 + Retry-After beyond)")
    p.add_argument("--request-timeout-s", type=float, default=defaults.request_timeout_s)
    p.add_argument("--max-conversations", type=int, default=defaults.max_conversations)
    p.add_argument("--max-turns", type=int, default=defaults.max_turns)
    p.add_argument("--conversation-ttl-min", type=float, default=defaults.conversation_ttl_min)
    p.add_argument("--cors-origin", dest="cors_origins", action="append", default=None,
                   help="allow browser calls from this origin (repeatable; default: CORS off)")
    p.add_argument("--decoding", default="greedy", choices=["greedy", "paper", "beam"])
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=serve_command)
