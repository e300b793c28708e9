"""Music knowledge every part of musilingo shares: pitch classes and their spelling, tempo
classes, meters, General MIDI instrument families and style names.

Data (captions, rendering), training (transposed key answers), evaluation (classes, baselines,
confusion labels) and the answer parser (``metrics/attributes.py``) all read these tables and
functions, so a threshold or a spelling is decided here once.

What it does not do: parse free text (``metrics/attributes.py``), say which attributes a clip's
truth carries or how one is asked about (``attributes.py``), or measure anything from audio.
Pure Python, no heavy imports.
"""

from __future__ import annotations

import re

# --- pitch classes and their spelling --------------------------------------------------------
LETTER_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Conventional tonic spellings: the fewest accidentals in the key signature.
MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
MINOR_LIKE_MODES = ("minor", "dorian", "phrygian", "aeolian", "locrian")
MODES = ("major", "minor")  # the modes the key attribute is scored on
_FLAT_MAJOR_KEYS = {1, 3, 5, 8, 10}  # Db Eb F Ab Bb major (and their relative minors) use flats
_ACCIDENTAL = {"": 0, "#": 1, "sharp": 1, "b": -1, "flat": -1}


def pitch_class(name: str) -> int:
    """A note or tonic name -> pitch class 0-11: ``"F#"``, ``"Gb"``, ``"G-flat"``, ``"f sharp"``,
    ``"F♯"`` -> 6; ``"B#"`` -> 0. Raises ValueError for anything else."""
    from musilingo.text import normalize_text

    t = normalize_text(str(name)).replace("-", "").replace(" ", "")
    if not t or t[0] not in LETTER_PITCH_CLASS or t[1:] not in _ACCIDENTAL:
        raise ValueError(f"not a tonic: {name!r}")
    return (LETTER_PITCH_CLASS[t[0]] + _ACCIDENTAL[t[1:]]) % 12


def tonic_name(pc: int, mode: str | None = None) -> str:
    """The conventional spelling of tonic pitch class ``pc`` in ``mode``: minor-like modes take
    the minor spellings (``tonic_name(8, "minor")`` -> ``"G#"``), anything else the major ones
    (``tonic_name(8, "major")`` -> ``"Ab"``). One spelling per (pitch class, mode), so it also
    labels classes (``tonic_name(pitch_class("Gb"), "major")`` -> ``"F#"``)."""
    minor_like = (mode or "").lower() in MINOR_LIKE_MODES
    return (MINOR_TONICS if minor_like else MAJOR_TONICS)[pc % 12]


def uses_flats(tonic_pc: int, mode: str) -> bool:
    """Whether the key of ``tonic_pc`` ``mode`` ("major" / "minor") is written with flats."""
    relative_major = (tonic_pc + (3 if mode == "minor" else 0)) % 12
    return relative_major in _FLAT_MAJOR_KEYS


def note_name(pc: int, flats: bool) -> str:
    """``note_name(10, flats=True)`` -> ``"Bb"``; with ``flats=False`` -> ``"A#"``."""
    return (FLAT_NAMES if flats else SHARP_NAMES)[pc % 12]


def transpose_tonic(tonic: str, mode: str | None, semitones: int) -> str:
    """``tonic`` moved by ``semitones``, spelt conventionally for ``mode``:
    ``transpose_tonic("A", "minor", 3)`` -> ``"C"``."""
    return tonic_name(pitch_class(tonic) + semitones, mode)


# --- tempo -------------------------------------------------------------------------------------
SLOW_BELOW_BPM = 76.0  # bottom of andante: slow < 76 bpm
FAST_FROM_BPM = 120.0  # allegro and up: moderate 76-119.9, fast >= 120
TEMPO_CLASSES = ("slow", "moderate", "fast")


def tempo_class(bpm: float) -> str:
    """``"slow"`` below 76 bpm, ``"fast"`` from 120 bpm, ``"moderate"`` in between."""
    if bpm < SLOW_BELOW_BPM:
        return "slow"
    return "fast" if bpm >= FAST_FROM_BPM else "moderate"


# --- meter -------------------------------------------------------------------------------------
METER_NAMES = {
    "2/4": "duple time", "3/4": "waltz time", "4/4": "common time", "2/2": "cut time",
    "6/8": "compound duple time", "9/8": "compound triple time", "12/8": "compound quadruple time",
    "3/8": "compound single time", "5/4": "quintuple time", "3/2": "triple time",
    "4/2": "quadruple time", "6/4": "compound duple time", "7/8": "septuple time",
}  # fmt: skip
_SIGNATURE_RE = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$")


def meter_category(signature: str) -> str:
    """``"3/4"`` -> ``"triple simple"``, ``"6/8"`` -> ``"duple compound"``, ``"5/4"`` ->
    ``"irregular"``. Raises ValueError when ``signature`` is not ``"N/D"``."""
    m = _SIGNATURE_RE.match(str(signature))
    if not m:
        raise ValueError(f"not a time signature: {signature!r}")
    n = int(m.group(1))
    if n in (6, 9, 12):
        return {6: "duple", 9: "triple", 12: "quadruple"}[n] + " compound"
    if n in (2, 3, 4):
        return {2: "duple", 3: "triple", 4: "quadruple"}[n] + " simple"
    return "irregular"


def meter_name(signature: str) -> str | None:
    """The common name of a time signature (``"3/4"`` -> ``"waltz time"``), None if it has none."""
    return METER_NAMES.get(signature)


# --- instruments -------------------------------------------------------------------------------
GM_FAMILIES = (
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive",
    "sound effects",
)  # fmt: skip
#: A word that names exactly one General MIDI family (the answer parser reads it back as that
#: family alone; ``tests/test_music.py`` checks it), for sentences that state a family class.
FAMILY_WORDS = {
    "piano": "piano", "chromatic percussion": "celesta", "organ": "organ", "guitar": "guitar",
    "bass": "bass", "strings": "strings", "ensemble": "string ensemble", "brass": "brass",
    "reed": "saxophone", "pipe": "flute", "synth lead": "synth lead", "synth pad": "synth pad",
    "synth effects": "synth effects", "ethnic": "sitar", "percussive": "steel drums",
    "sound effects": "sound effects",
}  # fmt: skip


#: General MIDI programs whose family here is not the GM table's: program 110, "Fiddle", is a
#: violin (GM files it under ethnic). The answer parser reads "fiddle" as strings, so the truth
#: must too, or the right answer "a fiddle" scores 0.
GM_FAMILY_EXCEPTIONS = {110: "strings"}


def gm_program_family(program: int) -> str:
    """The instrument family of a General MIDI program (0-127): ``GM_FAMILIES[program // 8]``,
    except :data:`GM_FAMILY_EXCEPTIONS`."""
    program = int(program)
    if not 0 <= program < 128:
        raise ValueError(f"not a General MIDI program: {program}")
    return GM_FAMILY_EXCEPTIONS.get(program, GM_FAMILIES[program // 8])


def family_word(family: str) -> str:
    """A word the answer parser reads as exactly ``family`` (``"reed"`` -> ``"saxophone"``)."""
    return FAMILY_WORDS.get(family, family)


# --- styles ------------------------------------------------------------------------------------
STYLES: dict[str, str] = {}  # name or synonym -> canonical style name


def _style(canonical: str, *synonyms: str) -> None:
    for s in (canonical, *synonyms):
        STYLES[s] = canonical


_style("bossa nova", "bossa", "bossa-nova", "bossanova")
_style("swing", "jazz swing", "swing jazz", "swinging", "big band swing", "big band")
_style("jazz", "jazzy", "bebop", "bop", "cool jazz", "smooth jazz")
_style("waltz", "valse", "waltzes")
_style("tango", "argentine tango")
_style("march", "marching", "military march", "marches")
_style("polka")
_style("rock", "rock and roll", "rock 'n' roll", "rock n roll", "rock'n'roll", "hard rock",
       "classic rock", "rock music")
_style("blues", "bluesy", "12-bar blues", "twelve-bar blues")
_style("country", "country and western", "country music", "bluegrass")
_style("reel", "reels")
_style("jig", "jigs", "gigue", "slip jig")
_style("hornpipe")
_style("chorale", "hymn", "hymns", "church hymn", "chorales")
_style("minuet", "menuet")
_style("mazurka")
_style("ragtime", "rag")
_style("folk", "folk song", "folk tune", "folk music")
_style("classical", "classical music")
_style("baroque")
_style("pop", "pop music", "pop song")
_style("funk", "funky")
_style("reggae")
_style("samba")
_style("habanera")
_style("gospel")
_style("metal", "heavy metal")
_style("hip hop", "hip-hop", "rap")
_style("electronic", "edm", "techno", "house music")
_style("disco")
_style("lullaby")
_style("ballad")
_style("latin")
_style("celtic", "irish")
_style("fugue")
_style("gavotte")
_style("sarabande")
_style("bolero")
_style("rumba")
_style("cha-cha", "cha cha", "cha-cha-cha")

# The rendered corpus's own style labels (``musilingo.data.render``: MMA grooves and their
# genres, music21 eras, ABC collections, Essen origins and dance types) that STYLES does not
# already fold into one of its styles, each with the broader styles it belongs to. Kept apart
# from STYLES, which also says which MusicCaps aspects are genres ("romantic" is a mood there).
# The answer parser reads both (longest phrase first: "a Baroque chorale" is one claim), and
# ``tests/test_music.py`` checks that every label the renderer can write, and every style answer
# the caption generator writes for it, reads back as that style.
CORPUS_STYLES: dict[str, str] = {}  # name or synonym -> canonical corpus style
STYLE_PARENTS: dict[str, tuple[str, ...]] = {}  # canonical style -> the broader styles it is one of
#: Adjectives of the origins an Essen folk song can have ("<origin> folk song"; the ABC
#: renderer's ``ESSEN_ORIGINS`` uses these and "Irish", whose songs are Irish folk tunes here)
FOLK_SONG_ORIGINS = (
    "European", "Central European", "Eastern European", "Southeast European", "German",
    "Chinese", "Luxembourgish", "Lorraine", "Yugoslav", "French", "Dutch", "Russian", "Hungarian",
    "Czech", "Swiss", "Romanian", "Polish", "Austrian", "Danish", "Swedish", "Italian", "English",
    "Scottish", "Norwegian", "Finnish", "Belgian", "Greek", "Spanish",
)  # fmt: skip
#: Labels the renderer can write that stay unscored as styles: words too common in answers to
#: be read as a style claim ("slide guitar", "a song")
UNSCORED_STYLES = frozenset(("song", "slide"))


def _corpus_style(canonical: str, *synonyms: str, parents: tuple[str, ...] = ()) -> None:
    for s in (canonical, *synonyms):
        CORPUS_STYLES[s] = canonical
    if parents:
        STYLE_PARENTS[canonical] = parents


# broader styles STYLES lacks (MMA genres and music-history periods)
for _broad in ("ballroom", "caribbean", "religious", "renaissance", "medieval"):
    _corpus_style(_broad)
_corpus_style("show tune", "show tunes", "broadway")
_corpus_style("romantic", "romantic era", "romantic period")
# the MMA genre of styles STYLES already has
for _name, _genre in (("swing", "jazz"), ("bossa nova", "latin"), ("rumba", "latin"),
                      ("bolero", "latin"), ("cha-cha", "latin"), ("samba", "latin"),
                      ("chorale", "religious"), ("ballad", "pop")):
    STYLE_PARENTS[_name] = (_genre,)
CORPUS_STYLES["rhumba"] = "rumba"
# music21 collections
_corpus_style("baroque chorale", parents=("baroque", "chorale"))
_corpus_style("renaissance polyphony", parents=("renaissance",))
_corpus_style("renaissance madrigal", parents=("renaissance",))
_corpus_style("medieval polyphony", parents=("medieval",))
_corpus_style("medieval chant", parents=("medieval",))
_corpus_style("hawaiian song")
# ABC collections, origins and dance types
_corpus_style("irish folk tune", "irish folk song", "irish folk", parents=("folk", "celtic"))
_corpus_style("scottish air", parents=("air", "celtic"))
_corpus_style("air", "slow air")
for _origin in FOLK_SONG_ORIGINS:
    _o = _origin.lower()
    _corpus_style(f"{_o} folk song", f"{_o} folk tune", f"{_o} folk", parents=("folk",))
for _dance, _parents in (("double jig", ("jig",)), ("single jig", ("jig",)),
                         ("strathspey", ("celtic",)), ("highland fling", ("celtic",)),
                         ("set dance", ("celtic",)), ("clog", ()), ("barndance", ()),
                         ("schottische", ()), ("walkaround", ())):
    _corpus_style(_dance, parents=_parents)
CORPUS_STYLES["barn dance"] = "barndance"
# MMA grooves (musilingo.data.mma_styles), under their genre
for _name, _parents in (
    ("50s rock and roll", ("rock",)), ("60s rock", ("rock",)), ("compound-time march", ("march",)),
    ("8-beat pop", ("pop",)), ("afro-cuban", ("latin",)), ("beguine", ("latin",)),
    ("boogie-woogie", ("blues",)), ("broadway show tune", ("show tune",)),
    ("calypso", ("caribbean",)), ("charleston", ("jazz",)), ("country swing", ("country", "swing")),
    ("country waltz", ("country", "waltz")), ("dixieland", ("jazz",)), ("easy swing", ("swing",)),
    ("fast blues", ("blues",)), ("fast swing", ("swing",)), ("folk rock", ("folk", "rock")),
    ("foxtrot", ("ballroom",)), ("french musette waltz", ("waltz",)), ("guitar ballad", ("ballad",)),
    ("jazz rock", ("jazz", "rock")), ("jazz waltz", ("jazz", "waltz")), ("jive", ("ballroom",)),
    ("light tango", ("tango",)), ("mambo", ("latin",)), ("mellow jazz", ("jazz",)),
    ("merengue", ("latin",)), ("piano ballad", ("ballad",)), ("pop ballad", ("pop", "ballad")),
    ("quickstep", ("ballroom",)), ("r&b", ()), ("rock ballad", ("rock", "ballad")),
    ("rock waltz", ("rock", "waltz")), ("salsa", ("latin",)), ("shuffle", ("blues",)),
    ("ska", ()), ("slow blues", ("blues",)), ("slow country", ("country",)),
    ("soft rock", ("rock",)), ("soft shoe", ("jazz",)), ("son cubano", ("latin",)),
    ("spiritual", ("religious",)), ("trance", ("electronic",)), ("twist", ("rock",)),
    ("viennese waltz", ("waltz",)), ("western swing", ("country", "swing")), ("zydeco", ()),
):
    _corpus_style(_name, parents=_parents)
for _alias, _name in (("rhythm and blues", "r&b"), ("dixie", "dixieland"),
                      ("fox trot", "foxtrot"), ("musette waltz", "french musette waltz"),
                      ("boogie woogie", "boogie-woogie"), ("afro cuban", "afro-cuban")):
    CORPUS_STYLES[_alias] = _name
#: every style phrase the answer parser reads: STYLES and the corpus's own
STYLE_PHRASES: dict[str, str] = {**CORPUS_STYLES, **STYLES}
_SPACED_STYLES = {re.sub(r"[\s-]+", " ", k): v for k, v in STYLE_PHRASES.items()}


def style_ancestors(style: str) -> frozenset[str]:
    """The broader styles a canonical style belongs to, transitively
    (``"baroque chorale"`` -> baroque, chorale, religious); empty for a style with none."""
    out: set[str] = set()
    todo = list(STYLE_PARENTS.get(style, ()))
    while todo:
        s = todo.pop()
        if s not in out:
            out.add(s)
            todo += STYLE_PARENTS.get(s, ())
    return frozenset(out)


def canonical_style(style: str) -> str:
    """Fold a style name or synonym to its canonical name (``"Bossa"`` -> ``"bossa nova"``);
    an unknown style comes back normalised (lower case, single spaces)."""
    from musilingo.text import normalize_text

    s = re.sub(r"[\s-]+", " ", normalize_text(style))
    return _SPACED_STYLES.get(s, s)


# --- key profiles --------------------------------------------------------------------------------
#: Key profiles (tonic first, 12 pitch classes above it) for correlation key finding
#: (Krumhansl-Schmuckler method), as (major, minor). Sources: Krumhansl & Kessler (1982) probe-tone
#: ratings; Temperley's Kostka-Payne corpus profile (Music and Probability, 2007; the values of
#: humdrum ``keycor`` and music21's ``TemperleyKostkaPayne``); Albrecht & Shanahan (2013, Music
#: Perception 31(1)), fitted to a 490-piece common-practice corpus. ``musilingo.analysis.key``
#: uses them; which one is the default is chosen on the dev split there (docs/analysis.md).
KEY_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "krumhansl": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    ),
    "temperley": (
        (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
        (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
    ),
    "albrecht-shanahan": (
        (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081),
        (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052),
    ),
}  # fmt: skip


def key_profile(name: str, mode: str, tonic_pc: int = 0) -> tuple[float, ...]:
    """Profile ``name`` (a key of :data:`KEY_PROFILES`) for ``mode`` ("major" / "minor"),
    rotated so that index ``tonic_pc`` is the tonic: ``key_profile("krumhansl", "major", 7)[7]``
    -> 6.35. Raises KeyError / ValueError for an unknown name / mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    p = KEY_PROFILES[name][MODES.index(mode)]
    t = tonic_pc % 12
    return tuple(p[(i - t) % 12] for i in range(12))


def meter_signature(beats_per_bar: int, compound: bool) -> str:
    """The time signature for ``beats_per_bar`` felt beats (2, 3 or 4) split in two (simple) or
    three (compound): ``meter_signature(3, False)`` -> ``"3/4"``, ``(2, True)`` -> ``"6/8"``."""
    if beats_per_bar not in (2, 3, 4):
        raise ValueError(f"beats_per_bar must be 2, 3 or 4, got {beats_per_bar}")
    return f"{3 * beats_per_bar}/8" if compound else f"{beats_per_bar}/4"


# Chords the chord estimate names, as pitch classes above the root: the major and minor triads
# (the MIREX "majmin" vocabulary) and the three common sevenths (with them, MIREX "sevenths").
# Labels are in Harte et al.'s syntax (ISMIR 2005), which mir_eval and the corpus's chord truth
# use: "C:maj", "F#:min", "G:7", "N" for no chord.
CHORD_QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10)}
TRIADS = ("maj", "min")
CHORD_SYMBOL_SUFFIX = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7"}
NO_CHORD = "N"


def chord_label(root_pc: int, quality: str) -> str:
    """Harte label of a chord, the root spelt as a major-key tonic: ``chord_label(10, "min")`` ->
    ``"Bb:min"``. Raises ValueError for a quality outside :data:`CHORD_QUALITIES`."""
    if quality not in CHORD_QUALITIES:
        raise ValueError(f"quality must be one of {tuple(CHORD_QUALITIES)}, got {quality!r}")
    return f"{MAJOR_TONICS[root_pc % 12]}:{quality}"


def chord_symbol(label: str) -> str:
    """The lead-sheet symbol of a Harte label of :func:`chord_label`'s kind: ``"A:min"`` ->
    ``"Am"``, ``"C:maj"`` -> ``"C"``, ``"G:7"`` -> ``"G7"``, ``"N"`` -> ``"N.C."``."""
    if label == NO_CHORD:
        return "N.C."
    root, _, quality = label.partition(":")
    return root + CHORD_SYMBOL_SUFFIX.get(quality, quality)
