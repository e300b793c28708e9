"""Render a training corpus whose musical truth is known: symbolic music -> MIDI -> audio.

What it does: plans a deterministic list of clips for a seed from three sources -
``music21`` (scores of music21's bundled corpus: Bach chorales, Palestrina and other Renaissance or
medieval polyphony, Classical/Romantic works), ``abc`` (folk tunes from the corpus's ABC files:
Essen folk songs, O'Neill's and Ryan's Irish dance tunes, Aird's airs... through ``abc2midi``) and
``mma`` (accompaniment grooves of the MMA library over generated chord progressions) - assigns
General MIDI instruments per part, randomises tempo and transposition, re-saves the MIDI through
pretty_midi, renders it with the ``fluidsynth`` CLI under a timeout, cuts a 10-30 s mono 24 kHz
clip and reads the TRUE tempo, meter and instruments back from the written MIDI (the key comes
from the symbolic source, transposed). It writes ``audio/<id>.wav``, one JSON per finished clip
in ``state/done/`` (so a killed run resumes without redoing clips), failures in ``state/failed/``,
and finally ``manifest.jsonl`` atomically, with a caption and Q&A per clip
(:mod:`musilingo.data.captions`).

What it does not: download anything, use the soundfonts/synths reserved for independent
evaluation (MuseScore General, timidity/freepats, game-music packages), add vocals, or decide
train/valid/test by clip - splits are by work (tunes by normalised title), so no work is in two.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from musilingo.data import mma_styles
from musilingo.data.manifest import Record, write_manifest
from musilingo.errors import ConfigError
from musilingo.music import tonic_name

SAMPLE_RATE = 24_000  # Hz, mono; what fluidsynth is asked for (-r) and what clips are stored at
FLUIDSYNTH_GAIN = 0.6  # fluidsynth -g; 0.6 keeps dense MMA grooves from clipping
FLUIDSYNTH_BIN = "fluidsynth"
MMA_BIN = "mma"
ABC2MIDI_BIN = "abc2midi"
DEFAULT_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
# Reserved for independent evaluation: refused here so they never leak into training audio.
FORBIDDEN_SOUNDFONT_WORDS = ("musescore", "freepats", "timidity")
DEFAULT_SOURCES = ("music21", "mma", "abc")
SOURCE_WEIGHTS = {"music21": 0.35, "mma": 0.35, "abc": 0.30}
SPLIT_FRACTIONS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
DEFAULT_NUM_CLIPS = 6000  # x ~20 s mean = ~33 h of audio
DEFAULT_CLIP_SECONDS = (10.0, 30.0)
MAX_TRANSPOSE = 4  # semitones either way; keeps parts in their instruments' ranges
TAIL_SECONDS = 1.0  # rendered beyond the clip so releases are not cut
MAX_LOOP_COPIES = 4  # a short tune is repeated at most this many extra times
PREROLL_SECONDS = 0.5  # rendered before the clip so attacks/controllers settle
SILENCE_DBFS = -60.0  # frames quieter than this count as silence
SILENCE_FRAME_S = 0.05
MAX_SILENT_FRACTION = 0.5  # a clip more silent than this is rejected
MIN_CLIP_RMS = 1e-3

# General MIDI programs by role. Vocal-like patches (52-54 choir/voice, 85 voice lead, 91 choir
# pad) and sound effects (120-127) are never assigned: captions must not imply voices or noises.
VOCAL_OR_FX_PROGRAMS = frozenset({52, 53, 54, 85, 91, *range(120, 128)})
GM_MELODY = {
    "piano": (0, 1, 4, 6), "chromatic percussion": (8, 11, 12, 13), "organ": (16, 19, 21),
    "guitar": (24, 25, 26, 27), "strings": (40, 41, 46), "ensemble": (48, 49),
    "brass": (56, 60, 61), "reed": (64, 65, 68, 71), "pipe": (72, 73, 74, 75, 78),
    "synth lead": (80, 81), "ethnic": (105, 109, 110),
}
GM_BASS = {
    "piano": (0,), "organ": (19,), "bass": (32, 33, 35), "strings": (42, 43),
    "brass": (57, 58), "reed": (67, 70),
}
GM_COMP = {
    "piano": (0, 1, 4, 5), "organ": (16, 17, 19), "guitar": (24, 25, 26, 27),
    "ensemble": (48, 49, 50), "brass": (61,), "synth pad": (88, 89), "strings": (46, 45),
}
# Sensible instrument families per kind of music: (melody/upper parts, bass part).
FAMILIES_BY_KIND = {
    "chorale": (("organ", "strings", "brass", "reed", "pipe", "piano", "ensemble"),
                ("organ", "strings", "brass", "reed", "piano")),
    "renaissance": (("organ", "strings", "brass", "reed", "pipe", "ensemble"),
                    ("organ", "strings", "brass", "reed")),
    "classical": (("strings", "piano", "reed", "pipe", "brass", "ensemble", "organ"),
                  ("strings", "piano", "reed", "brass")),
    "folk": (("strings", "pipe", "organ", "ethnic", "reed", "piano", "guitar",
              "chromatic percussion"), ("bass", "guitar", "piano")),
}
# Homogeneous ensembles for part music (probability HOMOGENEOUS_P): (upper programs, bass program).
HOMOGENEOUS_ENSEMBLES = (
    ((40, 40, 41), 42),      # string quartet
    ((19, 19, 19), 19),      # church organ
    ((56, 60, 57), 58),      # brass choir
    ((73, 68, 71), 70),      # wind quintet-like
    ((0, 0, 0), 0),          # piano
    ((74, 74, 74), 74),      # recorder consort
)
HOMOGENEOUS_P = 0.5

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
# Dance type (normalised R: header) -> qpm range (quarter notes per minute as written to MIDI).
DANCE_QPM = {
    "reel": (180, 220), "hornpipe": (140, 176), "jig": (150, 186), "double jig": (150, 186),
    "slip jig": (150, 180), "single jig": (150, 186), "slide": (170, 200),
    "strathspey": (110, 140), "highland fling": (120, 150), "clog": (140, 170),
    "polka": (170, 210), "waltz": (120, 160), "march": (100, 124), "air": (60, 90),
    "barndance": (140, 170), "schottische": (130, 160), "mazurka": (120, 150),
    "set dance": (120, 150), "gavotte": (90, 120), "walkaround": (100, 130),
}
DANCE_ALIASES = {"slipjig": "slip jig", "fling": "highland fling", "double-jig": "double jig",
                 "slow air": "air", "set": "set dance", "barn dance": "barndance"}
SONG_QPM = (70, 120)
# Essen O: (origin) words -> English adjective; the most specific match wins.
ESSEN_ORIGINS = (
    ("Europa", "European"), ("Mitteleuropa", "Central European"), ("Osteuropa", "Eastern European"),
    ("Suedosteuropa", "Southeast European"), ("Deutschland", "German"), ("China", "Chinese"),
    ("Luxemburg", "Luxembourgish"), ("Lothringen", "Lorraine"), ("Jugoslawien", "Yugoslav"),
    ("Frankreich", "French"), ("Niederlande", "Dutch"), ("Irland", "Irish"),
    ("UdSSR", "Russian"), ("Russland", "Russian"), ("Ungarn", "Hungarian"),
    ("Tschechoslowakei", "Czech"), ("Schweiz", "Swiss"), ("Rumaenien", "Romanian"),
    ("Polen", "Polish"), ("Oesterreich", "Austrian"), ("Daenemark", "Danish"),
    ("Schweden", "Swedish"), ("Italien", "Italian"), ("England", "English"),
    ("Schottland", "Scottish"), ("Norwegen", "Norwegian"), ("Finnland", "Finnish"),
    ("Belgien", "Belgian"), ("Griechenland", "Greek"), ("Spanien", "Spanish"),
)


def _essen_origin(o_field: str) -> str | None:
    best = None
    for comp in o_field.split(","):
        for word, adj in ESSEN_ORIGINS:
            if re.search(rf"\b{word}\b", comp):
                best = adj
                break
    return best

_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_MODE_OFFSETS = {"major": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7,
                 "minor": 9, "locrian": 11}  # tonic above the relative major
_MODE_BY_OFFSET = {v: k for k, v in _MODE_OFFSETS.items()}
_ABC_MODE = {"": "major", "maj": "major", "ion": "major", "m": "minor", "min": "minor",
             "aeo": "minor", "dor": "dorian", "phr": "phrygian", "lyd": "lydian",
             "mix": "mixolydian", "loc": "locrian"}
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


@dataclass
class RenderOptions:
    """Options of :func:`render_corpus`."""

    out_dir: Path
    """Folder for audio/, state/ and manifest.jsonl (created)."""
    num_clips: int = DEFAULT_NUM_CLIPS
    """Clips planned; the manifest holds those that rendered (failures are logged)."""
    seed: int = 0
    """Same seed (and sources, soundfonts, clip_seconds) gives the same clips and attributes."""
    workers: int = 2
    """Processes; 1 renders in this process."""
    sources: tuple[str, ...] = DEFAULT_SOURCES
    """Any of "music21", "mma", "abc"."""
    soundfonts: tuple[str, ...] = DEFAULT_SOUNDFONTS
    """SF2 files; one is drawn per clip."""
    clip_seconds: tuple[float, float] = DEFAULT_CLIP_SECONDS
    """Clip length range in seconds; a length is drawn uniformly per clip."""
    timeout_s: float = 60.0
    """Wall-clock limit for one clip (parse + MIDI + render); one that runs out is tried once more
    with ``TIMEOUT_RETRY_FACTOR`` times this limit."""
    progress: bool = True
    """Show a tqdm bar."""
    retry_failed: bool = False
    """On resume, try clips that failed before again."""
    keep_midi: bool = False
    """Also keep midi/<id>.mid (for checks and debugging)."""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.sources = tuple(self.sources)
        self.soundfonts = tuple(str(s) for s in self.soundfonts)
        bad = [s for s in self.sources if s not in SOURCE_WEIGHTS]
        if bad or not self.sources:
            raise ConfigError(f"sources must be a non-empty subset of {tuple(SOURCE_WEIGHTS)}, "
                              f"got {self.sources}")
        if self.num_clips < 1:
            raise ConfigError(f"num_clips must be >= 1, got {self.num_clips}")
        lo, hi = self.clip_seconds
        if not 1.0 <= lo <= hi:
            raise ConfigError(f"clip_seconds must satisfy 1 <= min <= max, got {self.clip_seconds}")
        if not self.soundfonts:
            raise ConfigError("at least one soundfont is needed")
        for sf in self.soundfonts:
            if any(w in sf.lower() for w in FORBIDDEN_SOUNDFONT_WORDS):
                raise ConfigError(f"{sf}: reserved for independent evaluation; not for training")
            if not os.path.isfile(sf):
                raise ConfigError(f"{sf}: soundfont not found")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class ClipSpec:
    """One planned clip; everything the worker needs besides the options."""

    index: int
    clip_id: str
    source: str
    collection: str
    group: str
    work_id: str
    split_key: str
    path: str = ""  # score / ABC file (absolute)
    tune: int = -1  # ABC: the n-th tune (0-based) of the file
    style_file: str = ""  # MMA style file stem
    groove: str = ""  # MMA groove
    soundfont: str = ""
    clip_len: float = 20.0
    seed: int = 0


# ------------------------------------------------------------------------------------------
# Catalogue and plan (cheap, deterministic: no parsing of scores)


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


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")[:60]


def split_for(key: str) -> str:
    """Split of a work: stable hash of its split key, ~80/10/10 train/valid/test."""
    h = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    acc = 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if h < acc:
            return name
    return SPLIT_FRACTIONS[-1][0]


def _pick_weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def plan_clips(options: RenderOptions) -> list[ClipSpec]:
    """The deterministic list of clips for the options' seed (clip i depends only on seed, i)."""
    m21 = _m21_catalogue() if "music21" in options.sources else {}
    abc = _abc_catalogue() if "abc" in options.sources else {}
    mma = _mma_catalogue() if "mma" in options.sources else []
    avail = {"music21": bool(m21), "abc": bool(abc), "mma": bool(mma)}
    weights = {s: SOURCE_WEIGHTS[s] for s in options.sources if avail[s]}
    if not weights:
        raise ConfigError(f"none of the sources {options.sources} has material on this machine")
    specs = []
    lo, hi = options.clip_seconds
    for i in range(options.num_clips):
        rng = np.random.default_rng([options.seed, i])
        source = _pick_weighted(rng, weights)
        clip_len = round(float(rng.uniform(lo, hi)), 2)
        sf = options.soundfonts[int(rng.integers(len(options.soundfonts)))]
        clip_seed = int(rng.integers(2**31))
        common = dict(index=i, source=source, soundfont=sf, clip_len=clip_len, seed=clip_seed)
        if source == "music21":
            group = _pick_weighted(rng, {g: M21_GROUPS[g]["weight"] for g in m21})
            path = m21[group][int(rng.integers(len(m21[group])))]
            rel = Path(path).relative_to(_corpus_dir())
            coll = rel.parts[0]
            work_id = rel.with_suffix("").as_posix()
            spec = ClipSpec(clip_id=f"{i:06d}-m21-{_slug(work_id)}", collection=coll,
                            group=group, work_id=work_id, split_key=work_id, path=path, **common)
        elif source == "abc":
            group = _pick_weighted(rng, {g: ABC_GROUPS[g]["weight"] for g in abc})
            path, tune, title = abc[group][int(rng.integers(len(abc[group])))]
            coll = Path(path).parent.name
            work_id = f"{coll}/{Path(path).stem}/{tune}"
            spec = ClipSpec(clip_id=f"{i:06d}-abc-{_slug(work_id)}", collection=coll,
                            group=group, work_id=work_id, split_key=f"tune:{title}", path=path,
                            tune=tune, **common)
        else:
            st, grooves = mma[int(rng.integers(len(mma)))]
            groove = grooves[int(rng.integers(len(grooves)))]
            work_id = f"mma/{groove.lower()}"
            spec = ClipSpec(clip_id=f"{i:06d}-mma-{_slug(groove.lower())}", collection=st.file,
                            group=st.genre, work_id=work_id, split_key=work_id,
                            style_file=st.file, groove=groove, **common)
        specs.append(spec)
    return specs


# ------------------------------------------------------------------------------------------
# Worker: one clip


class _ClipTimeout(Exception):
    pass


def _on_alarm(signum, frame):  # pragma: no cover - only runs on a hang
    raise _ClipTimeout("clip timed out")


def _run(cmd: list[str], timeout: float, cwd: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              timeout=max(timeout, 1.0), errors="replace")
    except subprocess.TimeoutExpired:
        raise _ClipTimeout(f"{cmd[0]} timed out after {timeout:.0f} s") from None


def _program_name(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_name(int(program))


def _program_family(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_class(int(program)).lower()


def _choose_programs(n_parts: int, kind: str, rng: np.random.Generator) -> list[int]:
    """Programs for parts ordered top (melody) to bottom (bass)."""
    if n_parts >= 2 and kind in ("chorale", "renaissance", "classical") \
            and rng.random() < HOMOGENEOUS_P:
        upper, bass = HOMOGENEOUS_ENSEMBLES[int(rng.integers(len(HOMOGENEOUS_ENSEMBLES)))]
        return [upper[min(i, len(upper) - 1)] for i in range(n_parts - 1)] + [bass]
    up_fams, bass_fams = FAMILIES_BY_KIND[kind]
    progs = []
    for i in range(n_parts):
        if n_parts >= 2 and i == n_parts - 1:
            fam = bass_fams[int(rng.integers(len(bass_fams)))]
            choices = GM_BASS[fam]
        else:
            fam = up_fams[int(rng.integers(len(up_fams)))]
            choices = GM_MELODY[fam]
        progs.append(int(choices[int(rng.integers(len(choices)))]))
    return progs


def _transpose_pm(pm, semitones: int) -> None:
    import pretty_midi

    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for n in inst.notes:
            n.pitch = int(min(max(n.pitch + semitones, 0), 127))
    pm.key_signature_changes = [
        pretty_midi.KeySignature(12 * (k.key_number // 12) + (k.key_number % 12 + semitones) % 12,
                                 k.time)
        for k in pm.key_signature_changes]


def _drop_empty(pm) -> None:
    pm.instruments = [i for i in pm.instruments if i.notes]


def _key_from_signature_and_final(sig_major_pc: int,
                                  final_pc: int | None) -> tuple[int, str] | None:
    """Mode from where the tune ends within its key signature (folk tunes end on the tonic)."""
    if final_pc is None:
        return None
    off = (final_pc - sig_major_pc) % 12
    mode = _MODE_BY_OFFSET.get(off)
    return (final_pc, mode) if mode else None


def _strip_repeats(score) -> None:
    """Drop repeat barlines, brackets and D.C./segno marks: an excerpt of measures cannot be
    expanded, and the clip is a straight read of the written measures anyway."""
    import music21
    from music21 import bar, repeat

    for m in score.recurse().getElementsByClass(music21.stream.Measure):
        if isinstance(m.leftBarline, bar.Repeat):
            m.leftBarline = None
        if isinstance(m.rightBarline, bar.Repeat):
            m.rightBarline = bar.Barline("regular")
    for el in list(score.recurse().getElementsByClass(repeat.RepeatExpression)):
        el.activeSite.remove(el)
    for sp in list(score.spannerBundle.getByClass(music21.spanner.RepeatBracket)):
        score.spannerBundle.remove(sp)


def _music21_midi(spec: ClipSpec, rng: np.random.Generator, tmp: Path):
    """Parse a corpus score, set tempo/instruments/transposition; return (pm, meta)."""
    import music21
    import pretty_midi
    from music21 import tempo as m21tempo

    g = M21_GROUPS[spec.group]
    score = music21.converter.parse(spec.path)
    if isinstance(score, music21.stream.Opus):
        score = score.scores[0]
    composer = COMPOSER_BY_DIR.get(spec.collection)
    if composer is None and score.metadata is not None and score.metadata.composer:
        composer = str(score.metadata.composer)
    # Truth for the key: an explicit/analysed key must agree with the key signature and with the
    # lowest note of the final chord; modal repertoires claim no key.
    key_pc = key_mode = None
    if spec.collection not in MODAL_DIRS:
        try:
            k = score.analyze("key")
            sigs = list(score.recurse().getElementsByClass(music21.key.KeySignature))
            lowest_final = None
            finals = [n for n in score.recurse().notes if n.offset is not None]
            if finals:
                last_end = max(n.getOffsetInHierarchy(score) for n in finals)
                last = [n for n in finals if n.getOffsetInHierarchy(score) == last_end]
                lowest_final = min(p.midi for n in last for p in n.pitches) % 12
            sig_ok = not sigs or sigs[0].sharps == k.sharps
            if k.mode in ("major", "minor") and sig_ok and lowest_final == k.tonic.pitchClass \
                    and k.correlationCoefficient >= 0.7:
                key_pc, key_mode = k.tonic.pitchClass, k.mode
        except _ClipTimeout:
            raise
        except Exception:  # analysis failure only means "key unknown"
            pass
    qpm = int(rng.integers(g["qpm"][0], g["qpm"][1] + 1))
    for el in list(score.recurse().getElementsByClass(m21tempo.TempoIndication)):
        el.activeSite.remove(el)
    _strip_repeats(score)
    # Keep a window of measures long enough for the clip (long works are slow to write).
    need_ql = (spec.clip_len + 8.0) * qpm / 60.0
    parts = list(score.parts)
    if not parts:
        raise ValueError("score has no parts")
    measures = list(parts[0].getElementsByClass(music21.stream.Measure))
    if measures and score.highestTime > 2.5 * need_ql:
        bar_ql = max(measures[0].barDuration.quarterLength, 0.5)
        n_bars = int(math.ceil(need_ql / bar_ql)) + 1
        numbers = [m.number for m in measures]
        if len(numbers) > n_bars:
            start = int(rng.integers(0, len(numbers) - n_bars))
            score = score.measures(numbers[start], numbers[start + n_bars - 1])
            parts = list(score.parts)
    first_measure = parts[0].getElementsByClass(music21.stream.Measure).first()
    mark = m21tempo.MetronomeMark(number=qpm, referent=music21.duration.Duration(1.0))
    (first_measure or parts[0]).insert(0, mark)
    midi_path = tmp / "m21.mid"
    score.write("midi", fp=str(midi_path))
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    _drop_empty(pm)
    if not pm.instruments:
        raise ValueError("score produced no notes")
    # Parts top to bottom as music21 wrote them (score order); assign programs.
    programs = _choose_programs(len(pm.instruments), g["kind"], rng)
    for inst, prog in zip(pm.instruments, programs):
        inst.program, inst.is_drum = prog, False
    semis = int(rng.integers(-MAX_TRANSPOSE, MAX_TRANSPOSE + 1))
    _transpose_pm(pm, semis)
    style = g["style"] if spec.group == "bach" else M21_STYLE_BY_DIR.get(spec.collection,
                                                                          g["style"])
    if spec.group == "bach" and len(pm.instruments) != 4:
        style = "Baroque"
    # The top part carries the tune only in chorales; polyphony and classical textures move it.
    lead = 0 if style == "Baroque chorale" else None
    meta = {"style": style, "composer": composer, "collection": spec.collection,
            "transpose": semis, "lead_index": lead}
    if key_pc is not None:
        meta["key"] = ((key_pc + semis) % 12, key_mode)
    return pm, meta


def _abc_tune_text(path: str, tune: int) -> str:
    text = Path(path).read_text(encoding="latin-1")
    starts = _abc_tune_starts(text) + [len(text)]
    return text[starts[tune]:starts[tune + 1]]


def _parse_abc_key(value: str) -> tuple[int, str, int] | None:
    """K: value -> (tonic pc, mode, pc of the relative major); None for K:none/percussion."""
    m = re.match(r"\s*([A-Ga-g])([#b]?)\s*([A-Za-z]*)", value)
    if not m:
        return None
    pc = (_PC[m.group(1).upper()] + {"#": 1, "b": -1, "": 0}[m.group(2)]) % 12
    mode_word = m.group(3).lower()[:3]
    if mode_word in ("non", "per", "exp"):
        return None
    mode = _ABC_MODE.get(mode_word, _ABC_MODE.get(mode_word[:1], "major"))
    return pc, mode, (pc - _MODE_OFFSETS[mode]) % 12


def _normalise_dance(r: str) -> str | None:
    r = re.sub(r"[^a-z ]+", " ", r.lower()).strip()
    r = re.sub(r"\s+", " ", r)
    r = DANCE_ALIASES.get(r, r)
    return r if r in DANCE_QPM else None


def _abc_midi(spec: ClipSpec, rng: np.random.Generator, tmp: Path, deadline: float):
    import pretty_midi

    text = _abc_tune_text(spec.path, spec.tune)
    header = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]):\s*(.*)$", line)
        if m and m.group(1) not in header:
            header[m.group(1)] = m.group(2).strip()
        if line.startswith("K:"):
            break
    dance = _normalise_dance(header.get("R", "")) if spec.group != "essen" else None
    lo, hi = DANCE_QPM.get(dance, SONG_QPM) if dance else SONG_QPM
    qpm = int(rng.integers(lo, hi + 1))
    # Replace tempo fields (header and inline) with ours; Q: goes right after X:.
    lines = [ln for ln in text.splitlines() if not ln.startswith("Q:")]
    body = re.sub(r"\[Q:[^\]]*\]", "", "\n".join(lines[1:]))
    tune_txt = f"{lines[0]}\nQ:1/4={qpm}\n{body}\n"
    abc_path, midi_path = tmp / "tune.abc", tmp / "abc.mid"
    abc_path.write_text(tune_txt, encoding="latin-1")
    _run([ABC2MIDI_BIN, str(abc_path), "-o", str(midi_path)], deadline - time.monotonic())
    if not midi_path.is_file():
        raise ValueError("abc2midi wrote no MIDI")
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    _drop_empty(pm)
    if not pm.instruments:
        raise ValueError("tune produced no notes")
    # Truth for the key: the K: field, checked against the final melody note.
    key = None
    parsed = _parse_abc_key(header.get("K", ""))
    if parsed is not None:
        tonic_pc, mode, rel_major = parsed
        melody = pm.instruments[0]
        last_on = max(n.start for n in melody.notes)
        final_pc = min(n.pitch for n in melody.notes if n.start == last_on) % 12
        if final_pc == tonic_pc:
            key = (tonic_pc, mode)
        elif mode == "major" and spec.group == "essen":
            # Essen's K: gives only the signature; the final note tells the mode.
            key = _key_from_signature_and_final(rel_major, final_pc)
        elif mode != "major":
            key = (tonic_pc, mode)  # explicit mode written by the transcriber
    programs = _choose_programs(len(pm.instruments), "folk", rng)
    if len(pm.instruments) >= 2:  # abc2midi accompaniment: chords and bass from "gchords"
        mean_pitch = [float(np.mean([n.pitch for n in inst.notes])) for inst in pm.instruments]
        bass_j = 1 + int(np.argmin(mean_pitch[1:])) if len(pm.instruments) > 2 else -1
        for j in range(1, len(pm.instruments)):
            if j == bass_j:
                table, fams = GM_BASS, ["bass", "piano"]
            else:
                table, fams = GM_COMP, list(GM_COMP)
            fam = fams[int(rng.integers(len(fams)))]
            choices = table[fam]
            programs[j] = int(choices[int(rng.integers(len(choices)))])
    for inst, prog in zip(pm.instruments, programs):
        inst.program, inst.is_drum = prog, False
    semis = int(rng.integers(-MAX_TRANSPOSE, MAX_TRANSPOSE + 1))
    _transpose_pm(pm, semis)
    origin = _essen_origin(header.get("O", "")) if spec.group == "essen" else None
    if spec.group == "essen":
        style = f"{origin} folk song" if origin else "folk song"
    elif dance:
        style = dance
    else:
        style = ABC_GROUPS[spec.group]["style"]
    meta = {"style": style, "collection": spec.collection, "transpose": semis, "lead_index": 0}
    if dance:
        meta["dance_type"] = dance
    if origin:
        meta["origin"] = origin
    if key is not None:
        meta["key"] = ((key[0] + semis) % 12, key[1])
    return pm, meta


def _mma_midi(spec: ClipSpec, rng: np.random.Generator, tmp: Path, deadline: float):
    import pretty_midi

    style = next(s for s in mma_styles.MMA_STYLES if s.file == spec.style_file)
    qpm = int(rng.integers(style.qpm[0], style.qpm[1] + 1))
    mode = "minor" if style.family != "blues" and rng.random() < mma_styles.MINOR_PROBABILITY \
        else "major"
    tonic_pc = int(rng.integers(12))
    tonic = tonic_name(tonic_pc, mode)
    # Enough bars for the clip, plus lead-in and a final bar.
    beats = mma_styles.beats_per_bar(style)
    bars = int(math.ceil((spec.clip_len + 4.0) * qpm / 60.0 / beats)) + 2
    chords = mma_styles.make_progression(style, tonic_pc, mode, bars, rng)
    src = tmp / "groove.mma"
    src.write_text(mma_styles.mma_source(spec.groove, qpm, tonic, mode, chords, seed=spec.seed))
    midi_path = tmp / "mma.mid"
    proc = _run([MMA_BIN, str(src), "-f", str(midi_path)], deadline - time.monotonic(),
                cwd=str(tmp))
    if not midi_path.is_file():
        raise ValueError(f"mma wrote no MIDI: {proc.stdout[-300:]} {proc.stderr[-300:]}")
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    _drop_empty(pm)
    # Keep the groove's own voices half the time; otherwise re-voice by role. Vocal-like and
    # sound-effect patches are always replaced.
    revoice = rng.random() < 0.5
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        is_bass = "bass" in inst.name.lower() or "walk" in inst.name.lower()
        if revoice or inst.program in VOCAL_OR_FX_PROGRAMS:
            table = GM_BASS if is_bass else GM_COMP
            fams = ["bass"] if is_bass else list(GM_COMP)
            fam = fams[int(rng.integers(len(fams)))]
            inst.program = int(table[fam][int(rng.integers(len(table[fam])))])
    meta = {"style": style.style, "genre": style.genre, "groove": spec.groove,
            "collection": f"mma/{style.file}", "key": (tonic_pc, mode),
            "chords": chords[:8], "lead_index": None}
    return pm, meta


def _loop_to_length(pm, seconds: float, max_copies: int = MAX_LOOP_COPIES) -> int:
    """Repeat a short tune (as a player repeats a verse) until its notes last ``seconds``.

    Only for a constant tempo and meter; each repeat starts on the next bar line. Returns the
    number of copies added (0 when nothing was done)."""
    _, qpms = pm.get_tempo_changes()
    notes = [n for i in pm.instruments for n in i.notes]
    if len(qpms) != 1 or len(pm.time_signature_changes) > 1 or not notes:
        return 0
    first, end = min(n.start for n in notes), max(n.end for n in notes)
    if end - first >= seconds:
        return 0
    ts = pm.time_signature_changes[0] if pm.time_signature_changes else None
    quarters = ts.numerator * 4.0 / ts.denominator if ts else 4.0
    bar = quarters * 60.0 / float(qpms[0])
    period = math.ceil((end - 1e-6) / bar) * bar
    copies = min(int(math.ceil((seconds - (end - first)) / period)), max_copies)
    import pretty_midi

    for inst in pm.instruments:
        orig = list(inst.notes)
        for k in range(1, copies + 1):
            inst.notes += [pretty_midi.Note(n.velocity, n.pitch, n.start + k * period,
                                            n.end + k * period) for n in orig]
    return copies


def _tempo_in_window(pm, t0: float, t1: float) -> tuple[float, bool]:
    times, qpms = pm.get_tempo_changes()
    edges = list(times) + [max(t1, times[-1]) + 1.0]
    total, acc = 0.0, 0.0
    seen = []
    for k, q in enumerate(qpms):
        a, b = max(edges[k], t0), min(edges[k + 1], t1)
        if b > a:
            acc += q * (b - a)
            total += b - a
            seen.append(q)
    if total <= 0:
        q = float(qpms[np.searchsorted(times, t0, side="right") - 1])
        return float(q), False
    mean = float(acc / total)
    varies = bool(seen) and (max(seen) - min(seen)) > 0.05 * mean
    return mean, varies


def _meter_at(pm, t: float) -> tuple[int, int] | None:
    ts = [x for x in pm.time_signature_changes if x.time <= t + 1e-6]
    if not ts:
        ts = pm.time_signature_changes[:1]
    if not ts:
        return None
    return int(ts[-1].numerator), int(ts[-1].denominator)


def beat_bpm(qpm: float, meter: tuple[int, int] | None) -> float:
    """Beats per minute for the meter's beat: the denominator note in simple meters, the dotted
    note in compound ones (3/8, 6/8, 9/8, 12/8: dotted quarter). ``qpm`` is quarter notes/minute."""
    if meter is None:
        return qpm
    num, den = meter
    per_quarter = den / 4.0  # denominator notes per quarter
    if num in (3, 6, 9, 12) and den >= 8:
        return qpm * per_quarter / 3.0
    return qpm * per_quarter


def _window_midi(pm, w0: float, w1: float):
    """A copy of ``pm`` holding only [w0, w1], shifted to start at 0 (notes sounding across the
    edges are cut at them; tempo, meter and controllers are carried over)."""
    import copy

    win = copy.deepcopy(pm)
    for inst in win.instruments:
        notes = []
        for n in inst.notes:
            if n.end <= w0 or n.start >= w1:
                continue
            n.start, n.end = max(n.start, w0), min(n.end, w1)
            if n.end - n.start > 1e-3:
                notes.append(n)
        inst.notes = notes
    win.adjust_times(np.array([w0, w1]), np.array([0.0, w1 - w0]))
    return win


def _render_wav(midi_path: Path, wav_path: Path, soundfont: str, deadline: float) -> np.ndarray:
    import soundfile as sf

    cmd = [FLUIDSYNTH_BIN, "-ni", "-F", str(wav_path), "-r", str(SAMPLE_RATE),
           "-g", str(FLUIDSYNTH_GAIN), soundfont, str(midi_path)]
    _run(cmd, deadline - time.monotonic())
    if not wav_path.is_file():
        raise ValueError("fluidsynth wrote no audio")
    audio, sr = sf.read(str(wav_path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"fluidsynth wrote {sr} Hz, expected {SAMPLE_RATE}")
    return audio.mean(axis=1)


def _frame_db(x: np.ndarray) -> np.ndarray:
    hop = int(SILENCE_FRAME_S * SAMPLE_RATE)
    n = len(x) // hop
    if n == 0:
        return np.full(1, -120.0)
    frames = x[: n * hop].reshape(n, hop)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    return 20 * np.log10(rms)


def _instrument_summary(pm, t0: float, t1: float, lead_index: int | None) -> dict[str, Any]:
    names, fams, counts = [], [], []
    drums = False
    lead = None
    n_parts = 0
    for j, inst in enumerate(pm.instruments):
        n = sum(1 for x in inst.notes if x.start < t1 and x.end > t0)
        if n == 0:
            continue
        if inst.is_drum:
            drums = True
            continue
        n_parts += 1
        name = _program_name(inst.program)
        if lead_index is not None and j == lead_index:
            lead = name
        if name not in names:
            names.append(name)
            fams.append(_program_family(inst.program))
            counts.append(n)
    families = list(dict.fromkeys(fams))
    out = {"instruments": names, "instrument_families": families, "drums": drums,
           "num_parts": n_parts}
    if lead:
        out["lead_instrument"] = lead
    return out


def render_clip(spec: ClipSpec, options: RenderOptions) -> dict:
    """Render one clip to audio/<id>.wav and return its manifest record as a JSON dict."""
    import pretty_midi
    import soundfile as sf

    from musilingo.data import captions

    deadline = time.monotonic() + options.timeout_s
    rng = np.random.default_rng(spec.seed)
    with tempfile.TemporaryDirectory(prefix="render-") as td:
        tmp = Path(td)
        if spec.source == "music21":
            pm, meta = _music21_midi(spec, rng, tmp)
        elif spec.source == "abc":
            pm, meta = _abc_midi(spec, rng, tmp, deadline)
        else:
            pm, meta = _mma_midi(spec, rng, tmp, deadline)
        if spec.source != "mma":
            meta["repeats"] = _loop_to_length(pm, spec.clip_len) or None
        # Re-save through pretty_midi: orders note on/off so FluidSynth 2.3.1 never hangs on a
        # stuck note; the saved file is the truth the attributes are read from.
        midi_path = tmp / "final.mid"
        pm.write(str(midi_path))
        pm = pretty_midi.PrettyMIDI(str(midi_path))
        starts = [n.start for i in pm.instruments for n in i.notes]
        ends = [n.end for i in pm.instruments for n in i.notes]
        if not starts:
            raise ValueError("MIDI has no notes")
        first, last = min(starts), max(ends)  # skip the silence before the first note
        avail = last - first
        clip_len = min(spec.clip_len, avail)
        if clip_len < options.clip_seconds[0]:
            raise ValueError(f"piece too short: {avail:.1f} s of notes")
        t0 = round(float(first + float(rng.random()) * max(0.0, avail - clip_len)), 3)
        # Render only the window around the clip (long pieces would waste synth time).
        w0 = max(0.0, t0 - PREROLL_SECONDS)
        window = _window_midi(pm, w0, t0 + clip_len + TAIL_SECONDS)
        window_path = tmp / "window.mid"
        window.write(str(window_path))
        wav = _render_wav(window_path, tmp / "window.wav", spec.soundfont, deadline)
        a = int(round((t0 - w0) * SAMPLE_RATE))
        clip = wav[a:a + int(round(clip_len * SAMPLE_RATE))]
        peak = float(np.max(np.abs(clip))) if len(clip) else 0.0
        if peak > 0.99:
            clip = clip * (0.99 / peak)
        rms = float(np.sqrt(np.mean(clip**2))) if len(clip) else 0.0
        silent_frac = float(np.mean(_frame_db(clip) <= SILENCE_DBFS))
        if rms < MIN_CLIP_RMS or silent_frac > MAX_SILENT_FRACTION:
            raise ValueError(f"clip too quiet (rms {rms:.4f}, {silent_frac:.0%} silent)")
        duration = len(clip) / SAMPLE_RATE
        if abs(duration - clip_len) > 0.05:
            raise ValueError(f"clip is {duration:.2f} s, expected {clip_len:.2f} s")
        t1 = t0 + duration
        qpm, varies = _tempo_in_window(pm, t0, t1)
        meter = _meter_at(pm, t0)
        attrs: dict[str, Any] = {}
        if "key" in meta:
            pc, mode = meta["key"]
            attrs["key_tonic"] = tonic_name(pc, mode)
            attrs["key_mode"] = mode
        attrs["tempo_bpm"] = round(float(beat_bpm(qpm, meter)), 1)
        attrs["tempo_qpm"] = round(float(qpm), 1)
        if varies:
            attrs["tempo_varies"] = True
        if meter is not None:
            attrs["meter"] = f"{meter[0]}/{meter[1]}"
        attrs.update(_instrument_summary(pm, t0, t1, meta.get("lead_index")))
        for k in ("style", "genre", "dance_type", "origin", "composer", "collection", "groove",
                  "chords", "transpose", "repeats"):
            if meta.get(k) is not None:
                attrs[k] = meta[k]
        attrs["soundfont"] = Path(spec.soundfont).stem
        attrs["clip_start_s"] = t0
        if not attrs["instruments"]:
            raise ValueError("no pitched instrument sounds in the clip")
        audio_rel = f"audio/{spec.clip_id}.wav"
        out_wav = options.out_dir / audio_rel
        out_wav.parent.mkdir(parents=True, exist_ok=True)
        tmp_wav = out_wav.with_suffix(".tmp.wav")
        sf.write(str(tmp_wav), clip, SAMPLE_RATE, subtype="PCM_16")
        os.replace(tmp_wav, out_wav)
        if options.keep_midi:
            (options.out_dir / "midi").mkdir(parents=True, exist_ok=True)
            shutil.copy(midi_path, options.out_dir / "midi" / f"{spec.clip_id}.mid")
    caption = captions.make_caption(attrs, seed=spec.seed)
    qa = captions.make_qa(attrs, seed=spec.seed)
    rec = Record(id=spec.clip_id, audio=audio_rel, duration=round(duration, 3),
                 split=split_for(spec.split_key), source=f"{spec.source}:{spec.collection}",
                 work_id=spec.work_id, caption=caption, qa=qa, attributes=attrs)
    return rec.to_json()


# ------------------------------------------------------------------------------------------
# Driver: resumable, parallel


def _state_paths(out_dir: Path) -> tuple[Path, Path]:
    return out_dir / "state" / "done", out_dir / "state" / "failed"


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False))
    os.replace(tmp, path)


TIMEOUT_RETRY_FACTOR = 2.0
"""A clip that runs out of time is tried once more with this many times the limit."""


def _render_with_alarm(spec: ClipSpec, options: RenderOptions) -> dict:
    """``render_clip`` under SIGALRM (where this is the main thread) as a last-resort limit."""
    use_alarm = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGALRM, _on_alarm) if use_alarm else None
    if use_alarm:
        signal.alarm(int(math.ceil(options.timeout_s)) + 5)
    try:
        return render_clip(spec, options)
    finally:
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


def _work(args: tuple[ClipSpec, RenderOptions]) -> tuple[str, bool, str]:
    """Pool task: render one clip; record done/failed; never raises.

    Running out of time depends on the machine's load, not on the clip (a render with the test
    suite beside it dropped a clip that renders in seconds when idle), so a timed-out clip is
    tried once more with ``TIMEOUT_RETRY_FACTOR`` times the limit before it is logged as failed;
    other failures are properties of the clip and are not retried.
    """
    spec, options = args
    done_dir, failed_dir = _state_paths(options.out_dir)
    try:
        try:
            rec = _render_with_alarm(spec, options)
        except _ClipTimeout:
            longer = replace(options, timeout_s=options.timeout_s * TIMEOUT_RETRY_FACTOR)
            rec = _render_with_alarm(spec, longer)
        _write_json_atomic(done_dir / f"{spec.clip_id}.json", rec)
        (failed_dir / f"{spec.clip_id}.json").unlink(missing_ok=True)
        return spec.clip_id, True, ""
    except Exception as e:  # noqa: BLE001 - a failed clip is logged, never fatal
        msg = f"{type(e).__name__}: {e}"[:500]
        _write_json_atomic(failed_dir / f"{spec.clip_id}.json",
                           {"id": spec.clip_id, "work_id": spec.work_id, "error": msg,
                            "spec": asdict(spec)})
        return spec.clip_id, False, msg


def render_corpus(out_dir: str | os.PathLike, num_clips: int = DEFAULT_NUM_CLIPS, seed: int = 0,
                  workers: int = 2, sources: Sequence[str] = DEFAULT_SOURCES,
                  soundfonts: Sequence[str] = DEFAULT_SOUNDFONTS,
                  clip_seconds: tuple[float, float] = DEFAULT_CLIP_SECONDS,
                  timeout_s: float = 60.0, progress: bool = True, retry_failed: bool = False,
                  keep_midi: bool = False) -> Path:
    """Render (or resume rendering) the corpus into ``out_dir``; return the manifest path.

    Clips already in ``state/done/`` (with their audio present) are not rendered again; clips
    that failed before are skipped unless ``retry_failed``. The manifest lists the finished
    clips in plan order and is written atomically at the end.
    """
    options = RenderOptions(out_dir=Path(out_dir), num_clips=num_clips, seed=seed,
                            workers=workers, sources=tuple(sources),
                            soundfonts=tuple(soundfonts), clip_seconds=tuple(clip_seconds),
                            timeout_s=timeout_s, progress=progress, retry_failed=retry_failed,
                            keep_midi=keep_midi)
    specs = plan_clips(options)
    done_dir, failed_dir = _state_paths(options.out_dir)
    done_dir.mkdir(parents=True, exist_ok=True)
    failed_dir.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(options.out_dir / "state" / "options.json",
                       {k: (str(v) if isinstance(v, Path) else v)
                        for k, v in asdict(options).items()})

    def finished(s: ClipSpec) -> bool:
        return (done_dir / f"{s.clip_id}.json").is_file() and \
            (options.out_dir / "audio" / f"{s.clip_id}.wav").is_file()

    todo = [s for s in specs if not finished(s)
            and (options.retry_failed or not (failed_dir / f"{s.clip_id}.json").is_file())]
    bar = None
    if options.progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="render", unit="clip")
    n_fail = 0
    tasks = [(s, options) for s in todo]
    if options.workers == 1 or len(todo) <= 1:
        results = map(_work, tasks)
        pool = None
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp
        pool = ctx.Pool(options.workers, maxtasksperchild=200)
        results = pool.imap_unordered(_work, tasks)
    try:
        for _cid, ok, _msg in results:
            n_fail += not ok
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=n_fail)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    records = []
    for s in specs:
        p = done_dir / f"{s.clip_id}.json"
        if p.is_file() and finished(s):
            records.append(Record.from_json(json.loads(p.read_text()), str(p)))
    manifest = options.out_dir / "manifest.jsonl"
    if records:
        write_manifest(manifest, records)
    return manifest


def render_command(out: str, clips: int = DEFAULT_NUM_CLIPS, seed: int = 0, workers: int = 2,
                   sources: str = ",".join(DEFAULT_SOURCES), soundfonts: str = "",
                   min_seconds: float = DEFAULT_CLIP_SECONDS[0],
                   max_seconds: float = DEFAULT_CLIP_SECONDS[1], timeout: float = 60.0,
                   retry_failed: bool = False, keep_midi: bool = False,
                   quiet: bool = False) -> Path:
    """Render the synthetic training corpus (music21 scores, ABC folk tunes, MMA grooves).

    Args:
        out: output folder (audio/, state/, manifest.jsonl); rerun the same command to resume.
        clips: clips to plan (6000 x ~20 s is ~33 h of audio).
        seed: plan seed; the same seed gives the same clips and attributes.
        workers: parallel processes.
        sources: comma-separated subset of music21, mma, abc.
        soundfonts: comma-separated SF2 paths (default: FluidR3_GM and TimGM6mb).
        min_seconds: shortest clip.
        max_seconds: longest clip.
        timeout: seconds allowed per clip (a clip that runs out is tried once more with twice that).
        retry_failed: try clips that failed in an earlier run again.
        keep_midi: also keep the MIDI of each clip under midi/.
        quiet: no progress bar.
    """
    sfs = tuple(s for s in soundfonts.split(",") if s) or DEFAULT_SOUNDFONTS
    srcs = tuple(s.strip() for s in sources.split(",") if s.strip())
    t = time.time()
    path = render_corpus(out, num_clips=clips, seed=seed, workers=workers, sources=srcs,
                         soundfonts=sfs, clip_seconds=(min_seconds, max_seconds),
                         timeout_s=timeout, progress=not quiet, retry_failed=retry_failed,
                         keep_midi=keep_midi)
    n_failed = len(list((Path(out) / "state" / "failed").glob("*.json")))
    if not quiet:
        print(f"manifest: {path} ({time.time() - t:.0f} s; {n_failed} clips failed, "
              f"see {Path(out) / 'state' / 'failed'})")
    return path
