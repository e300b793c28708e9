"""Measured facts about a clip: tempo with beats and downbeats, meter, key, loudness and
real-world tags, each with a confidence (``musilingo analyze``).

One module per fact (:mod:`.tempo`, :mod:`.meter`, :mod:`.key`, :mod:`.tags`, :mod:`.loudness`)
reads the shared measurements of :mod:`.frontend`; :mod:`.facts` holds the typed result and its
one-line summary; :mod:`.pipeline` wires them. The CLI entry is
``musilingo.cli.commands.analyze_command``. Importing this package loads neither librosa nor
torch.
"""

from __future__ import annotations

__all__ = ["Facts", "analyze", "analyze_file"]


def __getattr__(name: str):
    if name == "Facts":
        from musilingo.analysis.facts import Facts

        return Facts
    if name in ("analyze", "analyze_file"):
        from musilingo.analysis import pipeline as _mod

        return getattr(_mod, name)
    raise AttributeError(name)
