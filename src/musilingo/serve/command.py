"""``musilingo serve``: load the model once and run the HTTP service with uvicorn.

:func:`serve_command` is the typed entry the CLI calls (tests and scripts may call it too); its
signature and docstring are the ``serve`` command line, :class:`ServeSettings` fields included
(``musilingo.cli.parser``). FastAPI and uvicorn are imported only when the server starts, so the
CLI stays light. This module does not define routes (``app.py``) or limits (``settings.py``).
"""

from __future__ import annotations

import logging
from typing import Literal

from musilingo.errors import ConfigError
from musilingo.generation import Runtime, Precision
from musilingo.serve.settings import LOOPBACK_HOSTS, ServeSettings

log = logging.getLogger(__name__)


def serve_command(settings: ServeSettings | None = None, host: str = "127.0.0.1",
                  port: int = 8000, device: str | None = None, llm: str | None = None,
                  precision: Precision | None = None, runtime: Runtime | None = None,
                  log_level: Literal["debug", "info", "warning", "error"] = "info") -> None:
    """Serve one model over HTTP (API and browser page) until interrupted.

    Binds to the loopback interface by default; the API has no authentication, so put it behind
    a proxy that has one before listening on other interfaces.

    Args:
        settings: the model and the limits the server enforces.
        host: interface to listen on (default loopback only; the API has no authentication).
        port: TCP port to listen on.
        device: cpu, cuda or cuda:N (default: cuda when available).
        llm: replace the model's LLM (a folder or hub id).
        precision: weights the answers are decoded with (default: the model's; int8 is faster
            on CPU, see docs/usage.md for its accuracy).
        runtime: what decodes greedy answers: torch, or llama.cpp (CPU; default: the model's).
        log_level: uvicorn's log level.
    """
    import uvicorn

    from musilingo.model import load_model
    from musilingo.serve.app import create_app

    settings = settings or ServeSettings()
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}")
    m, notes = load_model(settings.model, device, llm, precision=precision, runtime=runtime)
    for note in notes:
        log.warning("%s", note)
    if host not in LOOPBACK_HOSTS:
        log.warning("listening on %s: the API has no authentication; anyone who can reach this "
                    "address can use the model", host)
    uvicorn.run(create_app(m, settings), host=host, port=port, log_level=log_level)
