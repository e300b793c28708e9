"""Map a free-text answer to the musical attribute it claims, and score it against the truth.

Truth format: the keys of a manifest record's ``attributes`` (see ``musilingo.data.manifest``)::

    {"tempo_bpm": 72.0,                 # float, beats per minute
     "meter": "3/4",                    # time signature "N/D"
     "instrument_families": ["piano", "strings"],   # General MIDI families, see musilingo.music.GM_FAMILIES
     "drums": false,                    # bool: is there unpitched (GM channel 10) percussion
     "key_tonic": "F#",                 # A-G plus optional "#" / "b"
     "key_mode": "minor",               # "major" / "minor"
     "style": "waltz"}                  # see musilingo.music.STYLE_PHRASES (synonyms accepted)

Attributes scored (``score_attribute(attr, prediction_text, truth) -> float`` in [0, 1]):

- ``tempo``: the tempo class of the answer (bpm numbers win over words) against the class of
  ``tempo_bpm``; classes in :data:`TEMPO_CLASSES` (slow < 76 <= moderate < 120 <= fast).
- ``meter``: a time signature ("3/4", "common time", "cut time") must equal the truth; a meter
  category ("triple meter", "waltz time", "compound duple") must equal the truth's category.
- ``instruments``: set F1 of the GM families named (drum words excluded) vs the truth families.
- ``drums``: yes / no against ``drums``.
- ``key``: 0.5 for the tonic (enharmonics equal: F# == Gb) + 0.5 for the mode; when the truth
  has only one of the two, that one counts fully.
- ``style``: the style named (synonyms folded) against ``style``; styles nest
  (``musilingo.music.style_ancestors``) only so that "a rhumba, in the latin family" is one
  claim: "Viennese waltz" is not right for "waltz".

Rules shared by all attributes: a mention inside the scope of a negation ("not fast", "no drums",
"isn't in a minor key", "not a waltz", "the drums are absent") is a negative claim. Several
positive claims (hedging: "slow to moderate") earn 1/k when one of the k is right. With only
negative claims, attributes with a small closed class set (tempo class, mode, tonic, drums) earn
1/(classes left), i.e. the chance of a guess consistent with the answer; the others earn 0. An
answer that claims nothing scores 0.

This module parses English only, uses no model, and does not score free-form captions. The music
knowledge it reads (tempo thresholds, meters, families, styles, pitch classes) is
:mod:`musilingo.music`; the attribute names are :mod:`musilingo.attributes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from musilingo.attributes import ATTRIBUTES
from musilingo.text import fold_symbols, normalize_text
from musilingo.music import (
    GM_FAMILIES,
    STYLE_PHRASES,
    TEMPO_CLASSES,
    canonical_style,
    meter_category,
    pitch_class,
    style_ancestors,
    tempo_class,
)

_TEMPO_WORDS = {
    "slow": r"slow(?:ly|-paced|-moving|-tempo)?|very slow|largo|lento|adagio|grave|larghetto"
    r"|sluggish|leisurely|languid|unhurried|ballad tempo|down-?tempo",
    "moderate": r"moderate(?:ly)?|medium|mid-?tempo|mid-?paced|moderato|andante|andantino"
    r"|walking pace|steady pace|medium-paced|medium tempo|moderate tempo|allegretto",
    "fast": r"fast(?:-paced)?|quick(?:ly)?|rapid|up-?tempo|upbeat|brisk|lively|allegro|vivace"
    r"|presto|prestissimo|vivacissimo|speedy|energetic|high-?tempo|driving|hurried|frantic",
}
# Compound phrases matched before single words; they claim two classes (a hedge).
_TEMPO_HEDGES = {
    ("moderate", "fast"): r"moderately fast|medium[- ]fast|fairly fast|moderately quick",
    ("slow", "moderate"): r"moderately slow|medium[- ]slow|fairly slow",
}
_NUM = r"\d{2,3}(?:\.\d+)?"
_BPM_RE = re.compile(
    rf"(?P<a>{_NUM})(?:\s*(?:-|to|and)\s*(?P<b>{_NUM}))?\s*"
    r"(?:bpm|b\.p\.m\.?|beats\s*(?:per|a|/)\s*min(?:ute)?|beats\s*per\s*minute)"
    rf"|(?:tempo|metronome|(?:quarter|crotchet)(?:\s*note)?\s*=|q\s*=)\s*(?:of|is|at|:|=|around|"
    rf"about|approximately|roughly|~|\s)*(?P<c>{_NUM})\b"
)

# --- meter -----------------------------------------------------------------------------------
# Category of a time signature: (beats per bar, simple/compound). Irregular meters -> "irregular".
_SIG_RE = re.compile(r"(?<![\d/])(\d{1,2})\s*/\s*(\d{1,2})(?![\d/])")
_METER_WORDS = {  # phrase -> signature (exact claim) or category (category claim)
    "common time": "4/4", "cut time": "2/2", "alla breve": "2/2",
    "waltz time": "triple simple", "waltz": "triple simple", "three-four time": "3/4",
    "three four time": "3/4", "four-four time": "4/4", "four four time": "4/4",
    "six-eight time": "6/8", "six eight time": "6/8", "two-four time": "2/4",
    "triple meter": "triple simple", "triple time": "triple simple", "simple triple": "triple simple",
    "three beats per bar": "triple simple", "three beats per measure": "triple simple",
    "duple meter": "duple simple", "duple time": "duple simple", "simple duple": "duple simple",
    "two beats per bar": "duple simple", "march time": "duple simple",
    "quadruple meter": "quadruple simple", "quadruple time": "quadruple simple",
    "simple quadruple": "quadruple simple", "four beats per bar": "quadruple simple",
    "four beats per measure": "quadruple simple",
    "compound duple": "duple compound", "compound triple": "triple compound",
    "compound quadruple": "quadruple compound", "jig time": "duple compound",
    "odd meter": "irregular", "irregular meter": "irregular", "asymmetric meter": "irregular",
}  # fmt: skip


# --- instruments (General MIDI families) -----------------------------------------------------
DRUMS = "drums"  # unpitched percussion (GM channel 10), scored by the ``drums`` attribute
# name -> families. Deviations from a literal GM reading, on purpose: "fiddle" is a violin
# (strings, not GM 111), "double/upright bass" is the jazz bass (bass, not strings' contrabass),
# "woodwinds" claims both reed and pipe, voices/choir are the GM ensemble family (choir aahs).
_INSTRUMENTS: dict[str, tuple[str, ...]] = {}


def _add(families: tuple[str, ...], *names: str) -> None:
    for n in names:
        _INSTRUMENTS[n] = families


_add(("piano",), "piano", "grand piano", "upright piano", "acoustic piano", "electric piano",
     "e-piano", "rhodes", "wurlitzer", "honky-tonk piano", "harpsichord", "clavinet", "clavichord",
     "keyboard", "keyboards", "keys", "pianist", "fortepiano")
_add(("chromatic percussion",), "celesta", "celeste", "glockenspiel", "music box", "vibraphone",
     "vibes", "marimba", "xylophone", "tubular bells", "chimes", "dulcimer", "hammered dulcimer",
     "bells", "mallet percussion")
_add(("organ",), "organ", "church organ", "pipe organ", "hammond organ", "hammond", "rock organ",
     "drawbar organ", "reed organ", "harmonium", "accordion", "tango accordion", "harmonica",
     "bandoneon", "concertina", "melodica")
_add(("guitar",), "guitar", "acoustic guitar", "electric guitar", "classical guitar",
     "nylon guitar", "nylon-string guitar", "steel-string guitar", "jazz guitar",
     "distorted guitar", "overdriven guitar", "clean guitar", "rhythm guitar", "lead guitar",
     "slide guitar", "steel guitar", "pedal steel", "ukulele", "lute", "guitarist")
_add(("bass",), "bass", "bass guitar", "electric bass", "e-bass", "acoustic bass", "double bass",
     "upright bass", "string bass", "fretless bass", "slap bass", "synth bass", "bassline",
     "bass line", "bassist")
_add(("strings",), "strings", "violin", "violins", "viola", "cello", "violoncello", "contrabass",
     "fiddle", "harp", "orchestral harp", "pizzicato strings", "tremolo strings", "timpani",
     "string quartet", "string instruments", "stringed instruments", "violinist", "cellist")
_add(("ensemble",), "string ensemble", "string section", "string orchestra", "orchestral strings",
     "synth strings", "orchestra", "orchestral", "choir", "chorale singers", "voices", "vocals",
     "vocal", "voice", "singer", "singers", "singing", "vocalist", "orchestra hit", "vocal ensemble")
_add(("brass",), "brass", "brass section", "horns", "horn section", "trumpet", "trumpets",
     "trombone", "tuba", "french horn", "horn", "cornet", "flugelhorn", "euphonium", "sousaphone",
     "synth brass", "muted trumpet")
_add(("reed",), "saxophone", "sax", "alto sax", "tenor sax", "soprano sax", "baritone sax",
     "alto saxophone", "tenor saxophone", "clarinet", "bass clarinet", "oboe", "english horn",
     "cor anglais", "bassoon", "contrabassoon")
_add(("pipe",), "flute", "piccolo", "recorder", "pan flute", "panpipes", "pan pipes", "whistle",
     "tin whistle", "penny whistle", "ocarina", "shakuhachi", "fife", "bansuri", "blown bottle")
_add(("reed", "pipe"), "woodwinds", "woodwind", "woodwind section", "winds")
_add(("synth lead",), "synth", "synths", "synthesizer", "synthesizers", "synthesiser",
     "lead synth", "synth lead", "square lead", "sawtooth lead", "saw lead", "moog")
_add(("synth pad",), "synth pad", "synth pads", "pad", "pads", "ambient pad", "warm pad",
     "string pad", "polysynth")
_add(("synth effects",), "synth effects", "synth effect", "synth fx", "synth sweeps")
_add(("ethnic",), "sitar", "banjo", "shamisen", "koto", "kalimba", "mbira", "bagpipe",
     "bagpipes", "shanai", "shehnai", "mandolin", "oud", "bouzouki", "erhu", "balalaika", "santur")
_add(("percussive",), "steel drums", "steel drum", "steel pan", "steelpan", "woodblock",
     "wood block", "taiko", "taiko drum", "taiko drums", "agogo", "tinkle bell", "melodic tom",
     "synth drum", "reverse cymbal")
_add(("sound effects",), "sound effects", "applause", "birdsong", "bird sounds", "gunshot",
     "helicopter", "telephone", "seashore", "breath noise", "fret noise")
_DRUM_WORDS = (
    "drums", "drum", "drum kit", "drum set", "drumkit", "drumset", "drummer", "drumming",
    "percussion", "percussion section", "snare", "snare drum", "kick", "kick drum", "bass drum",
    "hi-hat", "hi-hats", "hihat", "hihats", "hi hat", "hi hats", "cymbal", "cymbals", "ride cymbal",
    "crash cymbal", "toms", "tom-toms", "tom toms", "drum machine", "congas", "conga", "bongos",
    "bongo", "tambourine", "shaker", "shakers", "cowbell", "handclaps", "hand claps", "claps",
    "castanets", "triangle", "cajon", "djembe", "tabla", "tablas", "darbuka", "beatbox",
    "breakbeat", "drumbeat", "drum beat", "rimshot", "brushes on the snare",
)  # fmt: skip
_NO_DRUM_WORDS = ("drumless", "percussionless", "unaccompanied by percussion", "a cappella",
                  "a capella")

# --- key ---------------------------------------------------------------------------------------
_ACC = r"(?P<acc>#|b(?![a-z])|-?sharp|-?flat|\s+sharp|\s+flat)?"
# church modes too: the corpus's modal folk tunes have truths such as "E phrygian"
_MODE = (r"(?:\s*-?\s*(?P<mode>major|minor|maj|min|dorian|phrygian|lydian|mixolydian|locrian|"
         r"aeolian|ionian|m)(?![a-z]))?")
_MODE_ALIASES = {"maj": "major", "min": "minor", "m": "minor", "ionian": "major", "aeolian": "minor"}
_TONIC_RE = re.compile(rf"(?<![\w'#-])(?P<letter>[A-Ga-g]){_ACC}{_MODE}")
_MODE_RE = re.compile(
    r"(?P<mode>major|minor)(?:-|\s+)(?:key|keys|tonality|mode|scale|feel|feeling|sound|"
    r"tonal center|harmony|harmonies)\b"
    r"|\b(?:key|mode|tonality)\s+(?:is|was|seems|sounds|feels|appears)\s+(?:to\s+be\s+)?"
    r"(?:in\s+)?(?:a\s+)?(?P<mode2>major|minor)\b"
    r"|\bin\s+(?:the\s+)?(?P<mode3>major|minor)\b"
)
_KEY_CONTEXT = re.compile(r"(?:key|tonic|tonality|tonal center|home note|centered)\s+(?:of|on|is|in)"
                          r"\s+(?:the\s+)?$|\bin\s+$")
_KEY_NOUNS = re.compile(r"\s*(?:key|keys|tonality|mode|scale|feel|chord|chords|progression|"
                        r"harmony|harmonies|sound|third|seventh|role|part|change|influence|"
                        r"difference|element)\b")

# --- negation ----------------------------------------------------------------------------------
_CLAUSE_SPLIT = re.compile(r"[.;:!?,()]|\s(?:but|however|although|though|whereas|yet|instead|"
                           r"rather|while)\s|\s-\s")
_NEGATORS = re.compile(
    r"\b(?:not|no|never|without|neither|nor|lacks|lacking|lack|absence\s+of|free\s+of|"
    r"rather\s+than|instead\s+of|hardly|nothing|none|devoid\s+of|minus|zero|doesn't|don't|"
    r"isn't|aren't|wasn't|weren't|won't|can't|cannot|\w+n't)\b"
)
_NEG_FALSE = re.compile(r"\b(?:not\s+only|no\s+doubt|not\s+just|no\s+less|nothing\s+but|"
                        r"without\s+(?:a\s+)?doubt|no\s+question)\b")
_POST_NEG = re.compile(
    r"^\s*(?:(?:is|are|was|were|be|been|seem|seems|appear|appears)\s+)?(?:absent|missing|nowhere|"
    r"silent|omitted|excluded)\b"
    r"|^\s*(?:(?:is|are|was|were|do|does|did|have|has|had)\s*)(?:not|n't|never)\s+"
    r"(?:\w+\s+)?(?:present|used|there|included|audible|heard|featured|played|playing|involved|"
    r"found|part|appear|feature|in\s+(?:it|the\s+\w+))\b"
)
_NEG_WINDOW = 5  # words before a mention searched for a negator


@dataclass
class Claims:
    """What an answer claims about one attribute: asserted values and denied values."""

    positive: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)

    def add(self, value: str, negated: bool) -> None:
        target = self.negative if negated else self.positive
        if value not in target:
            target.append(value)

    def __bool__(self) -> bool:
        return bool(self.positive or self.negative)


def _clauses(text: str) -> list[tuple[int, str]]:
    """(offset, clause) pieces of ``text``, split at punctuation and contrastive conjunctions."""
    out, start = [], 0
    for m in _CLAUSE_SPLIT.finditer(text):
        out.append((start, text[start : m.start()]))
        start = m.end()
    out.append((start, text[start:]))
    return out


def _negated(clause: str, start: int, end: int, post: bool = False) -> bool:
    before = clause[:start]
    words = before.split()
    window = " ".join(words[-_NEG_WINDOW:])
    window = _NEG_FALSE.sub(" ", window)
    if _NEGATORS.search(window):
        return True
    return bool(post and _POST_NEG.match(clause[end:]))


def _phrase_regex(phrases: Iterable[str], plural: bool = False) -> re.Pattern:
    alts = sorted(set(phrases), key=len, reverse=True)
    suffix = r"(?:s|es)?" if plural else ""
    body = "|".join(re.escape(a).replace(r"\ ", r"[\s-]+") for a in alts)
    return re.compile(rf"(?<![\w-])(?:{body}){suffix}(?![\w-])")


def _find(text: str, regex: re.Pattern, label_of, post: bool = False) -> list[tuple[str, bool, int]]:
    """(label, negated, position) of every match of ``regex`` in normalised ``text``."""
    found = []
    for offset, clause in _clauses(text):
        for m in regex.finditer(clause):
            label = label_of(m)
            if label is None:
                continue
            found.append((label, _negated(clause, m.start(), m.end(), post), offset + m.start()))
    return found


# --- parsers -------------------------------------------------------------------------------------
_TEMPO_WORD_RE = re.compile(
    r"(?<![\w-])(?:(?P<h0>" + _TEMPO_HEDGES[("moderate", "fast")] + r")|(?P<h1>"
    + _TEMPO_HEDGES[("slow", "moderate")] + r")|(?P<slow>" + _TEMPO_WORDS["slow"] + r")|(?P<moderate>"
    + _TEMPO_WORDS["moderate"] + r")|(?P<fast>" + _TEMPO_WORDS["fast"] + r"))(?![\w-])"
)


def parse_tempo(text: str) -> Claims:
    """Tempo classes claimed: bpm numbers ("120 bpm", "around 90 beats per minute", "90-100
    bpm" -> midpoint) when present, else tempo words. "neither fast nor slow" -> moderate."""
    t = normalize_text(text)
    claims = Claims()
    for offset, clause in _clauses(t):
        for m in _BPM_RE.finditer(clause):
            if m.group("a"):
                a = float(m.group("a"))
                bpm = (a + float(m.group("b"))) / 2 if m.group("b") else a
            else:
                bpm = float(m.group("c"))
            if 20 <= bpm <= 400:
                claims.add(tempo_class(bpm), _negated(clause, m.start(), m.end()))
    if claims.positive:
        return claims
    for offset, clause in _clauses(t):
        for m in _TEMPO_WORD_RE.finditer(clause):
            neg = _negated(clause, m.start(), m.end())
            if m.group("h0"):
                labels = ["moderate", "fast"]
            elif m.group("h1"):
                labels = ["slow", "moderate"]
            else:
                labels = [k for k in TEMPO_CLASSES if m.group(k)]
            if neg and len(labels) == 2:
                continue  # "not moderately fast" says little
            for label in labels:
                claims.add(label, neg)
    if not claims.positive and claims.negative:
        left = [c for c in TEMPO_CLASSES if c not in claims.negative]
        if len(left) == 1:  # "neither fast nor slow"
            claims.positive.append(left[0])
    return claims


_METER_WORD_RE = _phrase_regex(_METER_WORDS)


def parse_meter(text: str) -> Claims:
    """Meters claimed, as signatures ("3/4") or categories ("triple simple")."""
    t = normalize_text(text)
    claims = Claims()
    hits = []
    for offset, clause in _clauses(t):
        for m in _SIG_RE.finditer(clause):
            num, den = int(m.group(1)), int(m.group(2))
            if (den in (2, 4, 8, 16) and 1 <= num <= 15) or (den == 1 and 2 <= num <= 4):
                hits.append((offset + m.start(), f"{num}/{den}", _negated(clause, m.start(), m.end())))
        for m in _METER_WORD_RE.finditer(clause):
            phrase = re.sub(r"[\s-]+", " ", m.group(0))
            value = _METER_WORDS.get(phrase) or _METER_WORDS.get(phrase.replace(" ", "-"))
            if value is None:
                value = next(v for k, v in _METER_WORDS.items() if re.sub(r"[\s-]+", " ", k) == phrase)
            hits.append((offset + m.start(), value, _negated(clause, m.start(), m.end())))
    for _, value, neg in sorted(hits):
        claims.add(value, neg)
    # a category implied by a stated signature adds nothing ("3/4, a waltz time")
    sigs = [v for v in claims.positive if "/" in v]
    if sigs:
        cats = {meter_category(s) for s in sigs}
        claims.positive = [v for v in claims.positive if "/" in v or v not in cats]
    return claims


_INSTRUMENT_RE = _phrase_regex(list(_INSTRUMENTS) + list(_DRUM_WORDS), plural=True)


def _instrument_label(m: re.Match) -> str | None:
    word = re.sub(r"[\s-]+", " ", m.group(0))
    for cand in (word, re.sub(r"(?:es|s)$", "", word), re.sub(r"s$", "", word)):
        for table_word in (cand, cand.replace(" ", "-")):
            if table_word in _DRUM_WORDS or table_word.replace("-", " ") in _DRUM_WORDS:
                return DRUMS
            if table_word in _INSTRUMENTS:
                return "|".join(_INSTRUMENTS[table_word])
        spaced = {k.replace("-", " "): v for k, v in _INSTRUMENTS.items()}
        if cand in spaced:
            return "|".join(spaced[cand])
    return None


def _instrument_mentions(text: str) -> list[tuple[str, bool, int]]:
    t = normalize_text(text)
    return _find(t, _INSTRUMENT_RE, _instrument_label, post=True)


def parse_instruments(text: str) -> Claims:
    """GM families claimed (drum words are left to :func:`parse_drums`)."""
    claims = Claims()
    for label, neg, _ in _instrument_mentions(text):
        if label == DRUMS:
            continue
        for fam in label.split("|"):
            claims.add(fam, neg)
    claims.positive = [f for f in claims.positive if f not in claims.negative] or claims.positive
    return claims


def parse_drums(text: str) -> bool | None:
    """``True`` if drums/percussion are claimed present, ``False`` if absent, ``None`` if unsaid.

    The first drum mention decides ("no drums, only a shaker" -> False).
    """
    t = normalize_text(text)
    if any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", t) for w in _NO_DRUM_WORDS):
        return False
    for label, neg, _ in sorted(_instrument_mentions(text), key=lambda x: x[2]):
        if label == DRUMS:
            return not neg
    if re.search(r"\b(?:no|without|lacks?|lacking)\s+(?:any\s+)?(?:rhythm\s+section|beat)\b", t):
        return False
    return None


def _tonic_name(letter: str, acc: str | None) -> str:
    acc = (acc or "").strip().lstrip("-")
    return letter.upper() + {"#": "#", "sharp": "#", "b": "b", "flat": "b"}.get(acc, "")


@dataclass
class KeyClaims:
    """Tonic and mode claims of an answer."""

    tonic: Claims = field(default_factory=Claims)
    mode: Claims = field(default_factory=Claims)


def parse_key(text: str) -> KeyClaims:
    """Tonic ("F#", "Bb") and mode ("major"/"minor") claims.

    The article "a" is not read as the tonic A when lower-case and not in a key context
    ("a minor key", "a major role"), nor upper-case when a noun follows ("A minor key is used").
    """
    folded = re.sub(r"\s+", " ", fold_symbols(text))
    out = KeyClaims()
    for offset, clause in _clauses(folded):
        lclause = clause.lower()
        for m in _TONIC_RE.finditer(clause):
            letter, acc, mode = m.group("letter"), m.group("acc"), m.group("mode")
            mode = _MODE_ALIASES.get((mode or "").lower(), (mode or "").lower() or None)
            if m.group("mode") == "M":  # "CM" is C major in lead-sheet shorthand
                mode = "major"
            before = lclause[: m.start()]
            key_ctx = bool(_KEY_CONTEXT.search(before)) and not before.endswith(" a ")
            if not key_ctx:
                key_ctx = bool(re.search(r"(?:key|tonic|tonality)\s+(?:of|on|is|in)\s+(?:the\s+)?$",
                                         before))
            noun_follows = bool(_KEY_NOUNS.match(clause[m.end():]))
            is_a = letter in "aA" and not acc
            if letter.islower() and not key_ctx and not (acc or mode):
                continue  # a lone lower-case letter: "a", "b", "e", ... in prose
            if is_a:
                strict_ctx = bool(re.search(
                    r"(?:key|tonic|tonality)\s+(?:of|on|is|in)\s+(?:the\s+)?$", before))
                if letter == "a":
                    article = noun_follows or not key_ctx
                else:
                    article = (noun_follows and not strict_ctx) or (mode is None and not key_ctx)
                if article:
                    # "a minor key", "a major role", "A piano": at most a mode claim
                    if mode and re.match(r"\s*(?:key|keys|tonality|mode|scale)\b",
                                         clause[m.end():]):
                        out.mode.add(mode, _negated(lclause, m.start(), m.end()))
                    continue
            if not acc and not mode and not key_ctx:
                continue  # bare capital letter without accidental/mode/key context ("B section")
            if letter.isupper() and mode is None and not acc and m.group("mode") is None:
                if not key_ctx:
                    continue
            neg = _negated(lclause, m.start(), m.end())
            if m.group("mode") in ("m",) and not re.match(r"\s*(?:$|[ ,.;)])", clause[m.end():]):
                mode = None  # "Am" at end/punctuation only
            out.tonic.add(_tonic_name(letter, acc), neg)
            if mode:
                out.mode.add(mode, neg)
        for m in _MODE_RE.finditer(lclause):
            mode = m.group("mode") or m.group("mode2") or m.group("mode3")
            # skip modes already attached to a tonic ("E minor key")
            prev = lclause[: m.start()].rstrip()
            if re.search(r"(?<![\w'])[a-g](?:#|b|-?sharp|-?flat|\s+sharp|\s+flat)?$", prev) and \
                    not re.search(r"(?:^|\s)a$", prev):
                continue
            out.mode.add(mode, _negated(lclause, m.start(), m.end()))
    return out


_STYLE_RE = _phrase_regex(STYLE_PHRASES)


def parse_style(text: str) -> Claims:
    """Styles claimed, canonical names (synonyms folded)."""
    t = normalize_text(text)
    claims = Claims()

    def label(m: re.Match) -> str | None:
        return canonical_style(m.group(0))

    for value, neg, _ in sorted(_find(t, _STYLE_RE, label), key=lambda x: x[2]):
        claims.add(value, neg)
    # "jazz swing" also matches "jazz" inside "swing jazz"? phrases are longest-first, so no.
    return claims


# --- scoring -------------------------------------------------------------------------------------


def _closed_score(claims: Claims, truth: str, classes: int) -> float:
    """Score a claim on a closed class set of size ``classes``."""
    pos = [p for p in claims.positive if p not in claims.negative] or claims.positive
    if pos:
        return 1.0 / len(pos) if truth in pos else 0.0
    if claims.negative:
        if truth in claims.negative:
            return 0.0
        return 1.0 / max(1, classes - len(claims.negative))
    return 0.0


def _open_score(claims: Claims, truth: str) -> float:
    pos = [p for p in claims.positive if p not in claims.negative]
    if not pos:
        return 0.0
    return 1.0 / len(pos) if truth in pos else 0.0


def _style_score(claims: Claims, truth: str) -> float:
    """:func:`_open_score` for styles, which nest (``musilingo.music.style_ancestors``): a style
    named with a broader one it belongs to ("a rhumba, in the latin family", the caption
    generator's own wording) is one claim. Only the style itself is right: the corpus's styles
    are its classes, so "a Viennese waltz" for a waltz groove, or "a Baroque chorale" for a
    Baroque concerto, names another class (the old parser split the latter into two claims and
    gave it half)."""
    stated = [q for q in claims.positive if q not in claims.negative]
    implied = {a for q in stated for a in style_ancestors(q)}
    return _open_score(Claims([p for p in claims.positive if p not in implied], claims.negative),
                       truth)


def _need(truth: Mapping, key: str):
    if key not in truth or truth[key] is None:
        raise KeyError(f"truth has no {key!r} (keys: {sorted(truth)})")
    return truth[key]


def score_attribute(attr: str, prediction_text: str, truth: Mapping) -> float:
    """Score ``prediction_text`` on attribute ``attr`` (one of :data:`ATTRIBUTES`) against the
    truth mapping (manifest ``attributes`` keys, see module docstring); returns 0..1."""
    if attr == "tempo":
        return _closed_score(parse_tempo(prediction_text), tempo_class(float(_need(truth, "tempo_bpm"))), 3)
    if attr == "meter":
        sig = str(_need(truth, "meter")).replace(" ", "")
        claims = parse_meter(prediction_text)
        pos = [p for p in claims.positive if p not in claims.negative]
        if not pos:
            return 0.0
        hits = [p for p in pos if (p == sig if "/" in p else p == meter_category(sig))]
        return 1.0 / len(pos) if hits else 0.0
    if attr == "instruments":
        truth_fams = {normalize_text(f) for f in _need(truth, "instrument_families")}
        unknown = truth_fams - set(GM_FAMILIES)
        if unknown:
            raise ValueError(f"unknown instrument families in truth: {sorted(unknown)}")
        claims = parse_instruments(prediction_text)
        pred = set(claims.positive) - set(claims.negative)
        if not pred:
            # a drums-only truth answered with drums only / "no other instruments"
            return 1.0 if not truth_fams and parse_drums(prediction_text) is not None else 0.0
        tp = len(pred & truth_fams)
        if tp == 0:
            return 0.0
        precision, recall = tp / len(pred), tp / len(truth_fams)
        return 2 * precision * recall / (precision + recall)
    if attr == "drums":
        said = parse_drums(prediction_text)
        return 0.0 if said is None else float(said == bool(_need(truth, "drums")))
    if attr == "key":
        claims = parse_key(prediction_text)
        parts = []
        if truth.get("key_tonic"):
            pcs = Claims([str(pitch_class(t)) for t in claims.tonic.positive],
                         [str(pitch_class(t)) for t in claims.tonic.negative])
            parts.append(_closed_score(pcs, str(pitch_class(truth["key_tonic"])), 12))
        if truth.get("key_mode"):
            mode = str(truth["key_mode"]).lower()
            parts.append(_closed_score(claims.mode, _MODE_ALIASES.get(mode, mode), 2))
        if not parts:
            raise KeyError("truth has neither 'key_tonic' nor 'key_mode'")
        return sum(parts) / len(parts)
    if attr == "style":
        return _style_score(parse_style(prediction_text), canonical_style(str(_need(truth, "style"))))
    raise ValueError(f"unknown attribute {attr!r}; expected one of {ATTRIBUTES}")
