"""Curated MMA (Musical MIDI Accompaniment) styles and chord progressions for the rendered corpus.

What it does: names the MMA standard-library style files worth rendering, with a human style
label, a broad genre and a tempo range in MMA ``Tempo`` units (quarter notes per minute, which
MMA uses for every meter, 6/8 included); lists the playable grooves of each file (``DefGroove``
lines, without intros, endings, fills and breaks); builds chord progressions from Roman-numeral
templates in a given key and writes the ``.mma`` source text.

What it does not: run ``mma`` or read MIDI back (see :mod:`musilingo.data.render`, which reads the
true tempo, meter and instruments from the MIDI that mma writes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musilingo.music import note_name, uses_flats

MMA_STDLIB = Path("/usr/share/mma/lib/stdlib")

# Groove variants that are not a steady groove (one-bar intros, endings, fills, breaks).
_SKIP_GROOVE = re.compile(r"(intro|end|fill|break|metronome)", re.IGNORECASE)


@dataclass(frozen=True)
class MmaStyle:
    """One MMA library file: ``file`` stem, label for captions, broad genre, qpm range."""

    file: str
    style: str
    genre: str
    qpm: tuple[int, int]
    family: str  # progression family: pop, jazz, blues, latin, dance


MMA_STYLES: tuple[MmaStyle, ...] = (
    MmaStyle("50srock", "50s rock and roll", "rock", (140, 176), "pop"),
    MmaStyle("60srock", "60s rock", "rock", (116, 144), "pop"),
    MmaStyle("68march", "compound-time march", "march", (150, 190), "dance"),
    MmaStyle("8beat", "8-beat pop", "pop", (96, 128), "pop"),
    MmaStyle("afro-cuban", "Afro-Cuban", "latin", (100, 136), "latin"),
    MmaStyle("ballad", "ballad", "pop", (60, 80), "pop"),
    MmaStyle("basicrock", "rock", "rock", (108, 140), "pop"),
    MmaStyle("bebop", "bebop", "jazz", (180, 240), "jazz"),
    MmaStyle("beguine", "beguine", "latin", (100, 128), "latin"),
    MmaStyle("bigband", "big band swing", "jazz", (130, 176), "jazz"),
    MmaStyle("bluegrass", "bluegrass", "country", (150, 210), "pop"),
    MmaStyle("blues", "blues", "blues", (80, 110), "blues"),
    MmaStyle("boggiewoggie", "boogie-woogie", "blues", (130, 170), "blues"),
    MmaStyle("bolero", "bolero", "latin", (88, 116), "latin"),
    MmaStyle("bossanova", "bossa nova", "latin", (110, 150), "jazz"),
    MmaStyle("broadway", "Broadway show tune", "show tune", (116, 156), "jazz"),
    MmaStyle("calypso", "calypso", "caribbean", (108, 136), "dance"),
    MmaStyle("chacha", "cha-cha", "latin", (108, 128), "latin"),
    MmaStyle("charleston", "charleston", "jazz", (180, 228), "jazz"),
    MmaStyle("countryswing", "country swing", "country", (130, 168), "pop"),
    MmaStyle("countrywaltz", "country waltz", "country", (96, 132), "dance"),
    MmaStyle("dixie", "Dixieland", "jazz", (160, 208), "jazz"),
    MmaStyle("easyswing", "easy swing", "jazz", (100, 130), "jazz"),
    MmaStyle("fastblues", "fast blues", "blues", (130, 168), "blues"),
    MmaStyle("fastswing", "fast swing", "jazz", (190, 240), "jazz"),
    MmaStyle("folk", "folk", "folk", (88, 120), "pop"),
    MmaStyle("folkrock", "folk rock", "rock", (108, 136), "pop"),
    MmaStyle("foxtrot", "foxtrot", "ballroom", (108, 136), "jazz"),
    MmaStyle("frenchwaltz", "French musette waltz", "waltz", (140, 180), "dance"),
    MmaStyle("guitarballad", "guitar ballad", "pop", (60, 80), "pop"),
    MmaStyle("hymn", "hymn", "religious", (70, 96), "pop"),
    MmaStyle("jazzrock", "jazz rock", "jazz", (108, 140), "jazz"),
    MmaStyle("jazzwaltz", "jazz waltz", "jazz", (120, 170), "jazz"),
    MmaStyle("jive", "jive", "ballroom", (140, 176), "pop"),
    MmaStyle("lighttango", "light tango", "tango", (108, 128), "latin"),
    MmaStyle("lullaby", "lullaby", "lullaby", (60, 76), "pop"),
    MmaStyle("mambo", "mambo", "latin", (170, 204), "latin"),
    MmaStyle("march", "march", "march", (108, 128), "dance"),
    MmaStyle("mellowjazz", "mellow jazz", "jazz", (80, 108), "jazz"),
    MmaStyle("merengue", "merengue", "latin", (120, 160), "latin"),
    MmaStyle("pianoballad", "piano ballad", "pop", (60, 80), "pop"),
    MmaStyle("polka", "polka", "polka", (110, 140), "dance"),
    MmaStyle("popballad", "pop ballad", "pop", (64, 84), "pop"),
    MmaStyle("quickstep", "quickstep", "ballroom", (190, 210), "jazz"),
    MmaStyle("ragtime", "ragtime", "ragtime", (90, 120), "dance"),
    MmaStyle("rb", "R&B", "r&b", (88, 118), "pop"),
    MmaStyle("rhumba", "rhumba", "latin", (100, 128), "latin"),
    MmaStyle("rockballad", "rock ballad", "rock", (60, 80), "pop"),
    MmaStyle("rockwaltz", "rock waltz", "rock", (100, 140), "pop"),
    MmaStyle("salsa", "salsa", "latin", (160, 200), "latin"),
    MmaStyle("samba", "samba", "latin", (150, 190), "latin"),
    MmaStyle("shuffleboggie", "shuffle", "blues", (110, 140), "blues"),
    MmaStyle("ska", "ska", "ska", (140, 170), "pop"),
    MmaStyle("slowblues", "slow blues", "blues", (56, 75), "blues"),
    MmaStyle("slowcountry", "slow country", "country", (64, 84), "pop"),
    MmaStyle("softrock", "soft rock", "rock", (88, 116), "pop"),
    MmaStyle("softshoe", "soft shoe", "jazz", (100, 128), "jazz"),
    MmaStyle("son", "son cubano", "latin", (100, 130), "latin"),
    MmaStyle("spiritual", "spiritual", "religious", (80, 108), "pop"),
    MmaStyle("swing", "swing", "jazz", (120, 170), "jazz"),
    MmaStyle("tango", "tango", "tango", (108, 128), "latin"),
    MmaStyle("trance", "trance", "electronic", (128, 140), "pop"),
    MmaStyle("twist", "twist", "rock", (140, 164), "pop"),
    MmaStyle("vienesewaltz", "Viennese waltz", "waltz", (160, 190), "dance"),
    MmaStyle("waltz", "waltz", "waltz", (88, 120), "dance"),
    MmaStyle("westernswing", "western swing", "country", (130, 168), "jazz"),
    MmaStyle("zydeco", "zydeco", "zydeco", (130, 160), "dance"),
)

# Progression templates: (semitones above the tonic, MMA chord suffix) per bar.
# Major-key templates per family; minor-key ones are shared.
_PROGRESSIONS_MAJOR: dict[str, tuple[tuple[tuple[int, str], ...], ...]] = {
    "pop": (((0, ""), (7, ""), (9, "m"), (5, "")),
            ((0, ""), (5, ""), (7, ""), (0, "")),
            ((0, ""), (9, "m"), (5, ""), (7, "")),
            ((0, ""), (5, ""), (0, ""), (7, "7"), (0, ""), (5, ""), (7, "7"), (0, ""))),
    "jazz": (((0, "M7"), (9, "m7"), (2, "m7"), (7, "7")),
             ((2, "m7"), (7, "7"), (0, "M7"), (0, "6")),
             ((0, "M7"), (4, "m7"), (9, "7"), (2, "m7"), (7, "7"), (0, "6"))),
    "blues": (((0, "7"), (0, "7"), (0, "7"), (0, "7"), (5, "7"), (5, "7"), (0, "7"), (0, "7"),
               (7, "7"), (5, "7"), (0, "7"), (7, "7")),
              ((0, "7"), (5, "7"), (0, "7"), (0, "7"), (5, "7"), (5, "7"), (0, "7"), (0, "7"),
               (7, "7"), (5, "7"), (0, "7"), (7, "7"))),
    "latin": (((0, ""), (7, "7"), (7, "7"), (0, "")),
              ((0, "M7"), (2, "m7"), (7, "7"), (0, "M7"))),
    "dance": (((0, ""), (7, "7"), (7, "7"), (0, "")),
              ((0, ""), (5, ""), (7, "7"), (0, "")),
              ((0, ""), (0, ""), (7, "7"), (7, "7"), (7, "7"), (7, "7"), (0, ""), (0, ""))),
}
_PROGRESSIONS_MINOR: tuple[tuple[tuple[int, str], ...], ...] = (
    ((0, "m"), (5, "m"), (7, "7"), (0, "m")),
    ((0, "m"), (8, ""), (5, "m"), (7, "7")),
    ((0, "m7"), (5, "m7"), (2, "m7b5"), (7, "7")),
    ((0, "m"), (10, ""), (8, ""), (7, "7")),
)
MINOR_PROBABILITY = 0.35  # share of non-blues progressions written in a minor key

# MMA chord suffix -> quality in Harte et al.'s chord syntax (ISMIR 2005), the notation
# mir_eval and the MIREX chord task read: the corpus's chord truth is written in it.
HARTE_QUALITY = {"": "maj", "m": "min", "7": "7", "M7": "maj7", "m7": "min7", "6": "maj6",
                 "m7b5": "hdim7"}


def harte_name(chord: str) -> str:
    """An MMA chord name of the templates above in Harte syntax: ``"Bbm7"`` -> ``"Bb:min7"``."""
    m = re.fullmatch(r"([A-G][#b]?)(.*)", chord)
    if not m or m.group(2) not in HARTE_QUALITY:
        raise ValueError(f"not a chord of the progression templates: {chord!r}")
    return f"{m.group(1)}:{HARTE_QUALITY[m.group(2)]}"


def style_grooves(style: MmaStyle, lib: Path = MMA_STDLIB) -> list[str]:
    """Groove names defined in a style file, without intros/endings/fills; sorted, unique."""
    path = lib / f"{style.file}.mma"
    if not path.is_file():
        return []
    names = set()
    for line in path.read_text(encoding="latin-1").splitlines():
        m = re.match(r"\s*DefGroove\s+(\S+)", line, re.IGNORECASE)
        if m and not _SKIP_GROOVE.search(m.group(1)):
            names.add(m.group(1))
    return sorted(names)


def beats_per_bar(style: MmaStyle, lib: Path = MMA_STDLIB) -> int:
    """Beats per bar from the style file's first ``Time`` directive (4 when absent)."""
    path = lib / f"{style.file}.mma"
    if path.is_file():
        for line in path.read_text(encoding="latin-1").splitlines():
            m = re.match(r"\s*Time\s+(\d+)", line, re.IGNORECASE)
            if m:
                return max(int(m.group(1)), 1)
    return 4


def make_progression(style: MmaStyle, tonic_pc: int, mode: str, bars: int,
                     rng: np.random.Generator) -> list[str]:
    """Chord names (one per bar) for ``bars`` bars, repeating a template; ends on the tonic."""
    if mode == "minor":
        templates = _PROGRESSIONS_MINOR
    else:
        templates = _PROGRESSIONS_MAJOR[style.family]
    template = templates[int(rng.integers(len(templates)))]
    flats = uses_flats(tonic_pc, mode)
    chords = [note_name(tonic_pc + off, flats) + suffix for off, suffix in template]
    out = [chords[i % len(chords)] for i in range(max(bars - 1, 1))]
    tonic_suffix = template[0][1] if template[0][0] == 0 else ("m" if mode == "minor" else "")
    out.append(note_name(tonic_pc, flats) + tonic_suffix)
    return out


def mma_source(groove: str, qpm: int, tonic: str, mode: str, chords: list[str],
               seed: int | None = None) -> str:
    """The text of an .mma file: random seed, tempo, key signature, groove and one chord per bar.
    Without ``RndSeed`` MMA leaves its humanisation (random timing, volume, skipped notes) unseeded,
    so the same clip rendered twice would differ."""
    lines = [f"RndSeed {seed}"] if seed is not None else []
    lines += [f"Tempo {qpm}", f"KeySig {tonic} {mode}", f"Groove {groove}"]
    lines += [f"{i} {c}" for i, c in enumerate(chords, 1)]
    return "\n".join(lines) + "\n"
