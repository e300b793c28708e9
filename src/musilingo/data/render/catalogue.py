"""What there is to render: the source collections and what is known about each.

What it does: names the music21 corpus collections (grouped by kind, with style, composer and
tempo range per group or folder, and which are modal), the ABC collections, and lists the works
each offers on this machine (score files, ABC tunes with their normalised titles, MMA styles with
their grooves), cached per process. Listing reads file names and ABC headers only.

What it does not: choose or plan clips (:mod:`.plan`), parse scores or write MIDI (the
``convert_*`` modules).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from musilingo.data import mma_styles

# music21 collections grouped by kind; weights pick a group, then a work uniformly.
M21_GROUPS: dict[str, dict[str, Any]] = {
    "bach": {"dirs": ("bach",), "kind": "chorale", "style": "Baroque chorale",
             "qpm": (60, 100), "weight": 0.4},
    "renaissance": {"dirs": ("palestrina", "monteverdi", "trecento", "luca", "ciconia",
                             "lusitano"),
                    "kind": "renaissance", "style": "Renaissance polyphony", "qpm": (110, 170),
                    "weight": 0.25},
    "classical": {"dirs": ("beethoven", "haydn", "mozart", "schubert", "schumann_clara",
                           "schumann_robert", "chopin", "weber", "verdi", "handel", "corelli",
                           "cpebach", "beach", "joplin", "liliuokalani", "johnson_j_r"),
                  "kind": "classical", "style": "classical", "qpm": (66, 150), "weight": 0.35},
}
M21_EXTS = (".mxl", ".xml", ".musicxml", ".krn")
M21_STYLE_BY_DIR = {
    "palestrina": "Renaissance polyphony", "monteverdi": "Renaissance madrigal",
    "trecento": "medieval polyphony", "ciconia": "medieval polyphony", "luca": "medieval chant",
    "lusitano": "Renaissance polyphony", "beethoven": "Classical", "haydn": "Classical",
    "mozart": "Classical", "schubert": "Romantic", "schumann_clara": "Romantic",
    "schumann_robert": "Romantic", "chopin": "Romantic", "weber": "Romantic", "verdi": "Romantic",
    "handel": "Baroque", "corelli": "Baroque", "cpebach": "Baroque", "beach": "Romantic",
    "joplin": "ragtime", "liliuokalani": "Hawaiian song", "johnson_j_r": "song",
}
COMPOSER_BY_DIR = {
    "bach": "Johann Sebastian Bach", "palestrina": "Giovanni Pierluigi da Palestrina",
    "monteverdi": "Claudio Monteverdi", "beethoven": "Ludwig van Beethoven",
    "haydn": "Joseph Haydn", "mozart": "Wolfgang Amadeus Mozart", "schubert": "Franz Schubert",
    "schumann_clara": "Clara Schumann", "schumann_robert": "Robert Schumann",
    "chopin": "Frederic Chopin", "weber": "Carl Maria von Weber", "verdi": "Giuseppe Verdi",
    "handel": "George Frideric Handel", "corelli": "Arcangelo Corelli",
    "cpebach": "Carl Philipp Emanuel Bach", "beach": "Amy Beach", "joplin": "Scott Joplin",
    "ciconia": "Johannes Ciconia", "lusitano": "Vicente Lusitano",
    "liliuokalani": "Liliuokalani",
}
# Renaissance/medieval music is modal: no major/minor key is claimed for it.
MODAL_DIRS = frozenset({"palestrina", "trecento", "ciconia", "luca", "lusitano", "monteverdi"})

# ABC collections: weight, style label when no dance type is given, qpm range for airs/songs.
ABC_GROUPS: dict[str, dict[str, Any]] = {
    "essen": {"dirs": ("essenFolksong",), "style": "folk song", "weight": 0.4},
    "irish": {"dirs": ("ryansMammoth", "oneills1850", "nottingham-dataset"),
              "style": "Irish folk tune", "weight": 0.45},
    "scottish": {"dirs": ("airdsAirs",), "style": "Scottish air", "weight": 0.1},
    "misc": {"dirs": ("miscFolk",), "style": "folk tune", "weight": 0.05},
}
ABC_SKIP_FILES = frozenset({"test0.abc", "test1.abc", "testd.abc", "teste.abc"})


def _corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


@lru_cache(maxsize=None)
def _m21_catalogue() -> dict[str, list[str]]:
    root = _corpus_dir()
    out: dict[str, list[str]] = {}
    for group, g in M21_GROUPS.items():
        files = []
        for d in g["dirs"]:
            base = root / d
            if base.is_dir():
                files += [str(p) for p in sorted(base.rglob("*"))
                          if p.suffix.lower() in M21_EXTS and p.is_file()]
        if files:
            out[group] = files
    return out


def _abc_tune_starts(text: str) -> list[int]:
    return [m.start() for m in re.finditer(r"^X:", text, re.MULTILINE)]


@lru_cache(maxsize=None)
def _abc_catalogue() -> dict[str, list[tuple[str, int, str]]]:
    """group -> [(file, tune index, normalised title)]."""
    root = _corpus_dir()
    out: dict[str, list[tuple[str, int, str]]] = {}
    for group, g in ABC_GROUPS.items():
        items = []
        for d in g["dirs"]:
            for p in sorted((root / d).glob("*.abc")):
                if p.name in ABC_SKIP_FILES:
                    continue
                text = p.read_text(encoding="latin-1")
                for i, start in enumerate(_abc_tune_starts(text)):
                    m = re.search(r"^T:\s*(.*)$", text[start:start + 2000], re.MULTILINE)
                    items.append((str(p), i, _normalise_title(m.group(1) if m else f"{p}#{i}")))
        if items:
            out[group] = items
    return out


@lru_cache(maxsize=None)
def _mma_catalogue() -> list[tuple[mma_styles.MmaStyle, tuple[str, ...]]]:
    out = []
    for st in mma_styles.MMA_STYLES:
        grooves = mma_styles.style_grooves(st)
        if grooves:
            out.append((st, tuple(grooves)))
    return out


def _normalise_title(title: str) -> str:
    t = title.lower().split("--")[0]
    t = re.sub(r"[^a-z0-9 ]+", " ", t)
    t = re.sub(r"^(the|a|an) ", "", t.strip())
    return re.sub(r"\s+", " ", t).strip()
