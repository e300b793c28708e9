"""The one text normaliser: the answer parser (``metrics/attributes.py``) and the music tables
(tonic and style names in :mod:`musilingo.music`) read text through it.

:func:`normalize_text` folds Unicode (NFKC), maps music and typographic symbols to ASCII
(``♯`` -> ``#``, ``♭`` -> ``b``, curly quotes, dashes), lower-cases and collapses whitespace.

What it does NOT touch: the caption protocols (``lpmc``, ``mullama``, ``coco``) reproduce
published evaluations, each with its own tokeniser (13a, nltk, PTB), and score the raw strings;
normalising before them would change the numbers that are meant to be compared.
"""

from __future__ import annotations

import re
import unicodedata

_SYMBOLS = {
    "\u266f": "#",  # ♯
    "\u266d": "b",  # ♭
    "\u266e": "",  # ♮
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": " - ", "\u2212": "-",
    "\u2044": "/", "\u2215": "/",
    "\u00a0": " ",
}  # fmt: skip
_SYMBOL_RE = re.compile("|".join(map(re.escape, _SYMBOLS)))
_SPACE_RE = re.compile(r"\s+")


def fold_symbols(text: str) -> str:
    """NFKC-fold ``text`` and map music/typographic symbols to ASCII; keeps case."""
    text = unicodedata.normalize("NFKC", text)
    return _SYMBOL_RE.sub(lambda m: _SYMBOLS[m.group(0)], text)


def normalize_text(text: str) -> str:
    """Fold symbols, lower-case and collapse whitespace: ``"F♯  Minor"`` -> ``"f# minor"``."""
    return _SPACE_RE.sub(" ", fold_symbols(text).lower()).strip()

