"""The attribute schema: which musical attributes a clip's truth can carry, how each is asked
about, what class a truth falls in, and a sentence that states a class.

One :class:`Attribute` per scored attribute (tempo, meter, key, instruments, drums, style):

- ``fields``: the keys of a manifest record's ``attributes`` it is scored against
  (``tempo_bpm``; ``key_tonic`` / ``key_mode``; ...);
- ``question``: the canonical question. Evaluation asks exactly it; the training data
  (``data/captions.py``) asks it as the first of several wordings;
- :func:`truth_class`: the class of a truth (``"moderate"``; ``("F#", "minor")``; a frozenset of
  instrument families);
- :func:`class_sentence`: an answer stating a class that the answer parser
  (``metrics/attributes.py``) reads back as that class, for the majority and probe baselines.

Data, training, evaluation and reports read this module; the music knowledge it uses (tempo
thresholds, tonic spelling, families, styles) lives in :mod:`musilingo.music`. It parses no free
text and scores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from musilingo import music


@dataclass(frozen=True)
class Attribute:
    """One scored attribute of a clip."""

    name: str
    """tempo | meter | key | instruments | drums | style"""
    fields: tuple[str, ...]
    """truth keys in a record's ``attributes`` (any one suffices for key)"""
    question: str
    """the canonical question evaluation asks"""

    def present(self, truth: Mapping[str, Any]) -> bool:
        """Whether ``truth`` (a record's ``attributes``) holds what this attribute is scored on."""
        return any(truth.get(k) is not None for k in self.fields)


SCHEMA: dict[str, Attribute] = {a.name: a for a in (
    Attribute("tempo", ("tempo_bpm",), "What is the tempo of this music?"),
    Attribute("meter", ("meter",), "What is the time signature?"),
    Attribute("key", ("key_tonic", "key_mode"), "What key is this piece in?"),
    Attribute("instruments", ("instrument_families",), "What instruments are playing?"),
    Attribute("drums", ("drums",), "Are there drums in this music?"),
    Attribute("style", ("style",), "What style of music is this?"),
)}
ATTRIBUTES = tuple(SCHEMA)  # ("tempo", "meter", "key", "instruments", "drums", "style")
#: every truth key some attribute is scored against
TRUTH_FIELDS = tuple(dict.fromkeys(k for a in SCHEMA.values() for k in a.fields))


def get_attribute(name: str) -> Attribute:
    """The schema entry of ``name``; ValueError naming the known attributes otherwise."""
    try:
        return SCHEMA[name]
    except KeyError:
        raise ValueError(f"unknown attribute {name!r}; expected one of "
                         f"{', '.join(ATTRIBUTES)}") from None


def truth_class(attr: str, truth: Mapping[str, Any]) -> Any:
    """The class of the truth for ``attr``: a string (tempo class, time signature, ``"yes"`` /
    ``"no"``, canonical style); a ``(tonic | None, mode | None)`` pair for key, the tonic spelt
    one way per pitch class and mode; a frozenset of GM families for instruments."""
    from musilingo.text import normalize_text

    get_attribute(attr)
    if attr == "tempo":
        return music.tempo_class(float(truth["tempo_bpm"]))
    if attr == "meter":
        return str(truth["meter"]).replace(" ", "")
    if attr == "key":
        tonic, mode = truth.get("key_tonic"), truth.get("key_mode")
        mode = str(mode).lower() if mode else None
        return (music.tonic_name(music.pitch_class(tonic), mode) if tonic else None, mode)
    if attr == "instruments":
        return frozenset(normalize_text(f) for f in truth["instrument_families"])
    if attr == "drums":
        return "yes" if truth["drums"] else "no"
    return music.canonical_style(str(truth["style"]))


def class_sentence(attr: str, cls: Any) -> str:
    """An answer stating class ``cls`` of ``attr`` (as :func:`truth_class` returns it) that the
    answer parser reads back as that class: ``("tempo", "slow")`` -> "The tempo is slow."."""
    get_attribute(attr)
    if attr == "tempo":
        return f"The tempo is {cls}."
    if attr == "meter":
        return f"The time signature is {cls}."
    if attr == "key":
        tonic, mode = cls
        if tonic and mode:
            return f"The piece is in the key of {tonic} {mode}."
        if tonic:
            return f"The piece is in the key of {tonic}."
        return f"The piece is in a {mode} key." if mode else "The key is unclear."
    if attr == "instruments":
        words = [music.family_word(f) for f in sorted(cls)]
        if not words:
            return "There are no pitched instruments."
        return "The instruments are " + (words[0] if len(words) == 1 else
                                         ", ".join(words[:-1]) + " and " + words[-1]) + "."
    if attr == "drums":
        return "Yes, there are drums." if cls == "yes" else "No, there are no drums."
    return f"The style is {cls}."


def key_label(cls: tuple[str | None, str | None]) -> str:
    """A key class as one label: ``("F#", "minor")`` -> ``"F# minor"``, ``(None, "minor")`` ->
    ``"? minor"``."""
    return f"{cls[0] or '?'} {cls[1] or '?'}"
