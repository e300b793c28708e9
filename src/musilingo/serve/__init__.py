"""HTTP service and browser page for one MusiLingo model (``musilingo serve``; extra ``serve``).

A thin layer over the one inference object, :class:`~musilingo.model.MusiLingo`:

- ``settings.py``       :class:`ServeSettings`, every limit in one typed dataclass
- ``batcher.py``        dynamic batching of concurrent requests onto one model thread
- ``conversations.py``  bounded chat history (LRU, turns, idle expiry)
- ``limits.py``         admission (503) and streaming upload-size (413) limits, as ASGI middleware
- ``pipeline.py``       decode -> encode -> generate for each endpoint
- ``schemas.py``        the JSON shapes (OpenAPI)
- ``app.py``            :func:`create_app`, the routes
- ``command.py``        :func:`serve_command`, uvicorn
- ``static/``           the page at ``/`` (plain HTML/CSS/JS, no build step, no CDN)

FastAPI is imported only by ``app`` (``from musilingo.serve.app import create_app``), so this
package imports without the ``serve`` extra. It does not train or evaluate.
"""

from __future__ import annotations

from typing import Any

from musilingo.serve.command import serve_command
from musilingo.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "serve_command"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from musilingo.serve.app import create_app

        return create_app
    raise AttributeError(name)
