"""Measured facts about a clip: tempo with beats and downbeats, meter, key, loudness and
real-world tags, each with a confidence (``musilingo analyze``).

One module per fact (:mod:`.tempo`, :mod:`.meter`, :mod:`.key`, :mod:`.tags`, :mod:`.loudness`)
reads the shared measurements of :mod:`.frontend`; :mod:`.facts` holds the typed result and its
one-line summary; :mod:`.pipeline` wires them. The CLI entry is
``musilingo.cli.commands.analyze_command``. Importing this package loads neither librosa nor
torch.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["Facts", "analyze", "analyze_file", "fingerprint"]

#: Bumped whenever an estimator's code changes what it measures; the fitted constants are hashed
#: on their own (:func:`fingerprint`).
CODE_VERSION = 3


def fingerprint() -> str:
    """A short hash of what decides the facts (code version and every fitted constant). Facts
    cached beside features carry it, so facts measured by another analysis are measured again
    instead of being read as if they were this one's."""
    from musilingo.analysis import fitted

    consts = {k: v for k, v in vars(fitted).items() if k.isupper()}
    blob = json.dumps({"code": CODE_VERSION, "fitted": consts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def __getattr__(name: str):
    if name == "Facts":
        from musilingo.analysis.facts import Facts

        return Facts
    if name in ("analyze", "analyze_file"):
        from musilingo.analysis import pipeline as _mod

        return getattr(_mod, name)
    raise AttributeError(name)
