"""Text-only training samples from the MusicCaps captions: a tags line and conversations derived
from each row, with no audio.

MusicCaps (``musiccaps-public.csv``; Google, CC-BY-SA 4.0) gives 5,521 ten-second YouTube clips an
aspect list (``['low quality', 'soft female vocal', 'mellow piano melody', 'sad', 'ballad']``)
and a caption written by a musician. The audio cannot be had offline, but the text alone teaches
the LLM the words people use about real music (voices, distorted guitars, hip-hop beats) and how
to turn a line of tags into them. Per row, :func:`text_samples` returns

- a **tags line** in the form of the measured-facts line (``musilingo.analysis.facts``,
  ``Facts.summary()``), without measurements: ``Tags: soft female vocal, mellow piano melody,
  sad, ballad, vocals`` (the row's aspects, lower-cased, deduplicated, at most :data:`MAX_TAGS`
  in the row's order, then ``vocals`` or ``no vocals`` only when :func:`vocals` is sure);
- a **caption sample**: :data:`musilingo.prompts.CAPTION_INSTRUCTION` answered by the human
  caption (whitespace cleaned);
- a **Q&A sample** (when the aspects support any): up to ``qa_per_row`` short questions, chosen
  per row with a seeded generator, about vocals, style (genre), mood, instruments, tempo and
  drums. Questions use the wordings of the project's attribute questions where they exist
  (``musilingo.attributes``, ``musilingo.data.captions``); every content word of an answer comes
  from the row's aspect list (the tests check this over all training rows).

**Splits.** ``split="train"`` uses only rows with ``is_audioset_eval`` False (2,663 rows). The
rows with ``is_audioset_eval`` True (2,858) are the MusicCaps evaluation set of the LP-MusicCaps
protocol the project reproduces: they must never be trained on. ``split="eval"`` returns them for
tests and inspection only.

What it does not: read or need audio, measure anything, paraphrase captions with an LLM
(``musilingo.data.instruct`` does that), or render prompts (a prompt style's job: the tags line
goes before the question, where a measured-facts line goes for audio).
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from musilingo.data.captions import _Q as CORPUS_QUESTIONS
from musilingo.errors import ManifestError
from musilingo.music import STYLES
from musilingo.prompts import CAPTION_INSTRUCTION, Turn

SOURCE = "musiccaps-text"
MAX_TAGS = 8  # aspects named in the tags line (rows have 1-34, mean 10.7)
QA_PER_ROW = 3  # short Q&A per row, when its aspects support that many kinds
SPLITS = ("train", "eval")


@dataclass
class TextSample:
    """One text-only conversation: the tags line goes before the first question, no audio."""

    id: str
    """``"{ytid}/caption"`` or ``"{ytid}/qa"``"""
    tags_line: str
    """``Tags: a, b, ..., vocals``: the row's aspects in the form of the measured-facts line"""
    turns: list[Turn]
    """questions with their answers"""
    source: str = SOURCE
    kinds: list[str] = field(default_factory=list)
    """the kind of each turn: ``"caption"`` or a key of :data:`QUESTIONS`"""


# ------------------------------------------------------------------------------------------
# Reading the CSV


def read_musiccaps(path: str | os.PathLike) -> list[dict]:
    """The rows of a MusicCaps CSV as dicts with its nine columns, typed: ``aspect_list`` and
    ``audioset_positive_labels`` lists, ``start_s`` / ``end_s`` floats, ``is_balanced_subset`` /
    ``is_audioset_eval`` booleans. Parsing is :func:`musilingo.data.loaders.load_musiccaps`'s (csv
    module, ``ast.literal_eval`` of the lists); a malformed row raises :class:`ManifestError`
    naming the file and line (an aspect that is not text: the file and the row's ytid)."""
    from musilingo.data.loaders import load_musiccaps

    rows = []
    for rec in load_musiccaps(path):
        x = rec.extra
        for a in x["aspect_list"]:
            if not isinstance(a, str):
                raise ManifestError(f"{path}: row {rec.id!r}: aspect_list holds {a!r}, not text")
        rows.append({"ytid": rec.id, "start_s": x["start_s"], "end_s": x["end_s"],
                     "audioset_positive_labels": x["audioset_positive_labels"],
                     "aspect_list": x["aspect_list"], "caption": rec.caption,
                     "author_id": x["author_id"], "is_balanced_subset": x["is_balanced_subset"],
                     "is_audioset_eval": rec.split == "test"})
    return rows


def _clean(text: str) -> str:
    return " ".join(text.split())


def clean_aspects(aspects: Sequence[str]) -> list[str]:
    """Lower-cased, whitespace-collapsed, deduplicated aspects in the row's order."""
    return list(dict.fromkeys(a for a in (_clean(x).lower() for x in aspects) if a))


# ------------------------------------------------------------------------------------------
# Vocals

# Voice words: those that say it sings (raps, chants, hums ...), then those that say only that a
# voice is there or speaks.
_SINGING_WORDS = (r"vocals?|vocalists?|vocali[sz]\w*|singers?|singing|sings|sung|rap|raps|"
                  r"rappers?|rapping|choirs?|choral|chants?|chanting|a ?capp?ella|humming|"
                  r"beatbox\w*|falsetto|yodel\w*|crooning|crooners?")
_OTHER_VOICE_WORDS = (r"voices?|spoken|speech|speaking|talking|narrat(?:or|ors|ion|ing)|"
                      r"whisper(?:ing|s)?")
_SINGING = re.compile(rf"\b(?:{_SINGING_WORDS})\b")
_VOICE = re.compile(rf"\b(?:{_SINGING_WORDS}|{_OTHER_VOICE_WORDS})\b")
# Aspects with a voice word that are not a voice of the music: a crowd, animals, singing bowls,
# synth choir pads, "singer-songwriter" (a genre), an instrument that "sings", a "humming noise".
_NOT_VOICE = re.compile(
    r"\b(?:crowd|people|audience|fans|birds?|whales?|wolves|bowls?|synth\w*|keys|pad|"
    r"songwriter|instruments?|strings?|noises?)\b")
_LIKE = re.compile(r"\b\w+[- ]like\b")  # "voice like sound" (a theremin) is no voice
# "no voices", "without vocals", "no singer", "instrumental", "guitar instrumental", ...
_NO_VOICE = re.compile(
    r"^(?:(?:no|without)\s+(?:voices?|vocals?|singers?|singing|vocalists?)(?:\s+melody)?"
    r"(?:\s+instrumental)?"
    r"|(?:(?!playback\b|background\b)[\w&'/-]+\s+)*instrumentals?"
    r"(?:\s+(?:music|song|track|piece|version|only|hits|solo|duet|cover))*)$")
# In a caption, per sentence: an explicit absence, or "this is an instrumental".
_CAPTION_NO_VOICE = re.compile(
    r"\b(?:no|without(?:\s+any)?)\s+(?:[\w-]+\s+(?:or|and)\s+)?"
    r"(?:vocals?|voices?|singers?|singing|vocalists?|vocal\s+melody)\b"
    r"|\bno\s*(?:one|body)\s+(?:is\s+)?sing"
    r"|\b(?:is|are)\s+(?:purely\s+|entirely\s+|completely\s+)?(?:an?\s+)?instrumental\b")
_CAPTION_NOT_VOICE = re.compile(
    r"\b(?:vocal|voice)s?[- ]like\b|\blike\s+(?:an?\s+)?(?:human\s+)?(?:voices?|vocals?|singing)\b"
    r"|\bsinging\s+bowls?\b"
    r"|\b(?:birds?|whales?)\s+(?:\w+\s+)?sing\w*|\b(?:crowd|audience|people|fans)\b.*")


def _aspect_says(aspect: str) -> bool | None:
    """True: the aspect names a voice; False: it says there is none; None: neither."""
    a = _clean(aspect).lower()
    if _NO_VOICE.match(a):
        return False
    if _VOICE.search(_LIKE.sub(" ", a)) and not _NOT_VOICE.search(a):
        return True
    return None


def _sentence_says(sentence: str) -> bool | None:
    s = _clean(sentence).lower()
    if _CAPTION_NO_VOICE.search(s):
        return False
    return True if _VOICE.search(_CAPTION_NOT_VOICE.sub(" ", s)) else None


def _verdict(says: list[bool | None]) -> bool | None:
    found = {x for x in says if x is not None}
    return found.pop() if len(found) == 1 else None  # nothing said, or a contradiction


def vocals(aspects: Sequence[str], caption: str = "") -> bool | None:
    """Whether a voice sings, raps, chants or speaks: True, False, or None when not clear.

    The aspects decide: one naming a voice (``"soft female vocal"``, ``"male singer"``,
    ``"rap"``, ``"choir"``, ``"male voice speaking"``) says True; ``"instrumental"``, ``"no
    voice"``, ``"no singer"`` ... say False; both kinds (a guitar lesson: ``"instrumental"``,
    ``"male voice speaking"``) give None. Only when no aspect says anything is the caption read,
    sentence by sentence, the same way ("There are no voices in this song." -> False; "A male
    voice sings." -> True; "like a human voice", singing bowls, birds and crowds do not count).
    """
    says = [_aspect_says(a) for a in aspects]
    if any(x is not None for x in says) or not caption:
        return _verdict(says)
    return _verdict([_sentence_says(s) for s in re.split(r"(?<=[.!?])\s+", caption)])


# ------------------------------------------------------------------------------------------
# Vocabularies

#: genre names of the musicnn heads (MSD and MTT tags) that are genres
MUSICNN_GENRES = (
    "rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz",
    "metal", "chillout", "classic rock", "soul", "indie rock", "electronica", "folk", "punk",
    "blues", "hard rock", "ambient", "experimental", "hip-hop", "country", "easy listening",
    "funk", "electro", "heavy metal", "progressive rock", "rnb", "indie pop", "house",
    "classical", "techno", "indian", "opera", "new age",
)  # fmt: skip
#: genre words for the style question: musicnn's, musilingo.music.STYLES and common ones
GENRES = frozenset(MUSICNN_GENRES) | frozenset(STYLES) | frozenset((
    "r&b", "rhythm and blues", "electronic dance music", "trance", "dubstep", "drum and bass",
    "drum & bass", "trap", "lo-fi", "lofi", "synth pop", "synthpop", "electro pop",
    "electropop", "dance pop", "pop rock", "soft rock", "punk rock", "grunge", "emo",
    "psychedelic rock", "blues rock", "folk rock", "country pop", "ska", "dancehall",
    "reggaeton", "afrobeat", "afrobeats", "k-pop", "j-pop", "bollywood", "carnatic",
    "hindustani", "hindustani classical", "indian classical", "flamenco", "salsa", "bachata",
    "cumbia", "mariachi", "bhangra", "merengue", "latin pop", "latin dance", "western classical",
    "romantic era", "orchestral", "choral", "christian", "christian rock", "worship",
    "soul jazz", "jazz fusion", "fusion", "doo wop", "rockabilly", "surf rock", "garage rock",
    "death metal", "black metal", "thrash metal", "nu metal", "metalcore", "hardcore",
    "post-rock", "shoegaze", "new wave", "synthwave", "deep house", "tech house",
    "progressive house", "minimal techno", "industrial", "downtempo", "trip hop", "idm",
    "breakbeat", "jungle", "chiptune", "video game music", "world music", "irish folk",
    "americana", "singer-songwriter", "acid jazz", "neo soul", "motown", "boom bap",
    "gangsta rap", "pop rap", "hyperpop", "musical theatre", "barbershop", "a cappella",
    "lounge", "exotica", "zydeco", "cajun", "klezmer", "dub", "soca", "calypso", "renaissance",
    "medieval",
))
# "rock music", "pop song", "folk tune": a genre word followed by one of these nouns
_GENRE_NOUN = re.compile(r"\s+(?:music|songs?|tracks?|tunes?|style|genre|pieces?)$")

#: mood words: an aspect that is one (or "<mood> mood / vibe / feel") answers the mood question
MOODS = frozenset((
    "happy", "sad", "emotional", "passionate", "energetic", "romantic", "mellow", "cheerful",
    "relaxing", "calming", "calm", "melancholic", "melancholy", "soothing", "joyful",
    "aggressive", "soulful", "playful", "dark", "eerie", "scary", "spooky", "suspenseful",
    "suspense", "uplifting", "peaceful", "dreamy", "haunting", "nostalgic", "epic", "dramatic",
    "intense", "exciting", "sentimental", "chill", "meditative", "mysterious", "sinister",
    "ominous", "inspiring", "fun", "funny", "lively", "spirited", "enthusiastic", "easygoing",
    "vibrant", "sensual", "spiritual", "ethereal", "heartfelt", "poignant", "hypnotic",
    "pleasant", "positive", "powerful", "motivational", "festive", "peppy", "gentle", "tense",
    "angry", "hopeful", "serene", "somber", "sombre", "gloomy", "lonely", "triumphant",
    "majestic", "tender", "whimsical", "upbeat", "cheery", "jolly", "joyous", "bittersweet",
    "wistful", "pensive", "reflective", "contemplative", "tranquil", "menacing", "creepy",
    "chaotic", "frantic", "euphoric", "excited", "sexy", "beautiful", "depressing", "depressed",
    "mournful", "solemn", "grim", "fierce", "rebellious", "confident", "carefree", "laid back",
    "laid-back", "chilled", "relaxed", "buoyant", "vivacious", "fiery", "heroic", "adventurous",
    "enchanting", "magical", "mystical", "celestial", "heavenly", "angelic", "bouncy", "quirky",
    "cute", "sweet", "loving", "affectionate", "yearning", "longing", "anxious", "nervous",
    "haunted", "tragic", "heartbreaking",
))
_MOOD_NOUN = re.compile(r"\s+(?:mood|vibe|vibes|feel|feeling|atmosphere|sound)$")
MAX_MOODS = 3

#: instrument names (the longest match wins; a plural "s" is allowed)
INSTRUMENTS = (
    # guitars and basses
    "electric guitar", "acoustic guitar", "bass guitar", "classical guitar", "slide guitar",
    "steel guitar", "rhythm guitar", "lead guitar", "distortion guitar", "distorted guitar",
    "twelve string guitar", "12 string guitar", "spanish guitar", "e-guitar", "guitar",
    "e-bass", "upright bass", "double bass", "synth bass", "electric bass", "acoustic bass",
    "fretless bass", "bass",
    # keyboards
    "acoustic piano", "electric piano", "grand piano", "piano", "keyboard", "hammond organ",
    "pipe organ", "church organ", "organ", "harpsichord", "synthesizer", "synthesiser", "synth",
    "accordion", "harmonium", "melodica", "celesta", "clavinet", "rhodes",
    # strings
    "string section", "string ensemble", "strings", "violin", "viola", "cello", "celli",
    "fiddle", "harp", "sitar", "banjo", "mandolin", "ukulele", "erhu", "koto", "guzheng",
    "veena", "sarod", "oud", "bouzouki", "santoor", "shamisen", "balalaika", "lute", "zither",
    "dulcimer", "kora",
    # winds and brass
    "pan flute", "flute", "piccolo", "clarinet", "oboe", "bassoon", "saxophone", "sax",
    "woodwind", "harmonica", "bagpipes", "bagpipe", "bansuri", "shehnai", "didgeridoo",
    "tin whistle", "shofar", "french horn", "horn", "brass section", "brass band", "brass",
    "trumpet", "trombone", "tuba", "cornet", "flugelhorn", "bugle",
    # drums and percussion
    "acoustic drums", "electronic drums", "digital drums", "drum kit", "drum machine", "drums",
    "bass drum", "kick drum", "snare drum", "snare", "percussion", "tabla", "congas", "conga",
    "bongos", "djembe", "tambourine", "shaker", "cymbal", "hi hat", "hi-hat", "timpani",
    "steel drums", "cajon", "dhol", "dholak", "cowbell", "castanets", "taiko", "gong",
    # tuned percussion and others
    "marimba", "xylophone", "vibraphone", "glockenspiel", "bells", "chimes", "kalimba", "mbira",
    "handpan", "music box", "theremin", "orchestra",
)  # fmt: skip
_INSTRUMENT_RE = re.compile(
    r"(?<![\w-])(?:" + "|".join(re.escape(n) for n in sorted(INSTRUMENTS, key=len, reverse=True))
    + r")(?:s|es)?(?![\w-])")
_DRUM_AND_BASS = r"\bdrum\s*(?:&|and|n'?)\s*bass\b"  # a genre
_NOT_AN_INSTRUMENT = re.compile(r"\b(?:no|without|synth\s+pop|synth\s+wave|synth\s+punk|"
                                r"imitation|sounding|like)\b|" + _DRUM_AND_BASS)
MAX_INSTRUMENTS = 5

_DRUMS_YES = re.compile(r"\b(?:drums?|drumming|drummer|drum\s*kit|drum\s+machine|drum\s+beats?)\b")
_DRUMS_NOT = re.compile(r"\b(?:no|without|steel|imitation|vocal|hang|tongue|like)\b|"
                        + _DRUM_AND_BASS)
_DRUMS_NO = re.compile(r"^(?:no|without)\s+(?:drums?|percussions?|percussion\s+instruments)$")

_TEMPO = re.compile(
    r"^((?:(?:very|moderately|relatively|quite)\s+)?"
    r"(?:slow|slower|fast|faster|medium|moderate|mid|quick|brisk)(?:[- ](?:slow|fast))?)"
    r"[- ]tempo$")
_TEMPO_WORDS = ("uptempo", "up-tempo", "downtempo", "medium to uptempo")


# ------------------------------------------------------------------------------------------
# Questions and answers. Each builder gets the aspects the tags line shows and a generator, and
# returns an answer, or None when those aspects do not support the question.

#: question wordings per kind; the first of each scored attribute is the canonical question
QUESTIONS: dict[str, tuple[str, ...]] = {
    "vocals": ("Is there a voice in this music?", "Are there vocals in this music?",
               "Is there any singing?"),
    "style": CORPUS_QUESTIONS["style"] + ("What genre is this music?",),
    "mood": ("What is the mood of this music?", "How does this music feel?",
             "What emotion does this music convey?"),
    "instruments": CORPUS_QUESTIONS["instruments"],
    "tempo": tuple(q for q in CORPUS_QUESTIONS["tempo"] if "bpm" not in q),
    "drums": CORPUS_QUESTIONS["drums"],
}


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


def _a(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


# "soft female vocal", "male voice singing", "backup singers", "female vocal melody": modifiers
# and a voice noun
_VOICE_NOUN = re.compile(r"^(?P<mods>(?:[\w'-]+\s+)*?)(?P<noun>vocals?|voices?|singers?|"
                         r"vocalists?)(?P<singing>\s+singing|\s+melody)?$")


def _sings(aspect: str) -> bool:
    """Whether a voice aspect says the voice sings (raps, chants, hums ...), not only that it is
    there or speaks."""
    return bool(_SINGING.search(_LIKE.sub(" ", aspect)))


def _voice_sentence(aspect: str) -> str:
    """``"soft female vocal"`` -> "Yes, a soft female voice sings."; ``"male voices"`` ->
    "Yes, there are male voices."; any other voice aspect -> "Yes, I can hear rap."."""
    m = _VOICE_NOUN.match(aspect)
    if not m or _LIKE.search(aspect):
        return f"Yes, I can hear {aspect}."
    noun = m.group("noun")
    plural = noun in ("voices", "singers", "vocalists")
    who = (m.group("mods") + ("voices" if plural else "voice")).strip()
    if noun not in ("voice", "voices") or m.group("singing"):
        return f"Yes, {who} sing." if plural else f"Yes, {_a(who)} sings."
    return f"Yes, there are {who}." if plural else f"Yes, there is {_a(who)}."


def _answer_vocals(shown: list[str], says: bool | None, sung: bool) -> str | None:
    """The answer to the vocals question, ``says`` being :func:`vocals` of all the row's aspects
    (which the tags line ends with) and ``sung`` whether one of them says the voice sings; the
    voice is described only from a ``shown`` aspect (a singing one first)."""
    if says is None:
        return None
    if says:
        named = [a for a in shown if _aspect_says(a)]
        aspect = next((a for a in named if _sings(a)), named[0] if named else None)
        if aspect is None:
            return "Yes, there are vocals." if sung else "Yes, there is a voice."
        return _voice_sentence(aspect)
    aspect = next((a for a in shown if _aspect_says(a) is False), None)
    if aspect is None:
        return "No, there are no vocals."
    if "instrumental" in aspect:
        return "No, it is instrumental."
    return f"No, there {'are' if aspect.endswith('s') else 'is'} {aspect}."


def genres(aspects: Sequence[str]) -> list[str]:
    """The genre words among the aspects (``"rock music"`` -> ``"rock"``), in order."""
    out = []
    for a in aspects:
        g = _GENRE_NOUN.sub("", a)  # "rock music" -> "rock", also where both are known
        g = g if g in GENRES else a
        if g in GENRES and g not in out:
            out.append(g)
    return out


def _answer_style(aspects: list[str], r: random.Random) -> str | None:
    found = genres(aspects)[:2]
    if not found:
        return None
    return r.choice([f"The style is {_join(found)}.", f"This is {_join(found)} music.",
                     f"It is {_join(found)}."])


def moods(aspects: Sequence[str]) -> list[str]:
    """The mood words among the aspects (``"happy mood"`` -> ``"happy"``), in order."""
    out = []
    for a in aspects:
        m = _MOOD_NOUN.sub("", a)
        m = m if m in MOODS else a
        if m in MOODS and m not in out:
            out.append(m)
    return out


def _answer_mood(aspects: list[str], r: random.Random) -> str | None:
    found = moods(aspects)[:MAX_MOODS]
    if not found:
        return None
    return r.choice([f"The mood is {_join(found)}.", f"It feels {_join(found)}.",
                     f"It sounds {_join(found)}."])


def instruments(aspects: Sequence[str]) -> list[str]:
    """Instrument names found in the aspects, as written (``"mellow piano melody"`` ->
    ``"piano"``, ``"electric guitars"``), in order, without one contained in another."""
    found: list[str] = []
    for a in aspects:
        if _NOT_AN_INSTRUMENT.search(a):
            continue
        found += [m.group(0) for m in _INSTRUMENT_RE.finditer(a)]
    found = list(dict.fromkeys(found))
    return [n for n in found
            if not any(n != o and re.search(rf"(?<![\w-]){re.escape(n)}(?:s|es)?(?![\w-])", o)
                       for o in found)]


def _answer_instruments(aspects: list[str], r: random.Random) -> str | None:
    found = instruments(aspects)[:MAX_INSTRUMENTS]
    if not found:
        return None
    if len(found) == 1:
        return r.choice([f"I can hear {found[0]}.", f"It features {found[0]}."])
    return r.choice([f"I can hear {_join(found)}.", f"The instruments are {_join(found)}.",
                     f"It features {_join(found)}."])


def drums(aspects: Sequence[str]) -> bool | None:
    """True when an aspect names drums or drumming, False for "no drums" / "no percussion",
    None when neither or both."""
    says = []
    for a in aspects:
        if _DRUMS_NO.match(a):
            says.append(False)
        elif _DRUMS_YES.search(a) and not _DRUMS_NOT.search(a):
            says.append(True)
    return _verdict(says)


def _answer_drums(aspects: list[str], r: random.Random) -> str | None:
    says = drums(aspects)
    if says is None:
        return None
    if says:
        aspect = next(a for a in aspects if _DRUMS_YES.search(a) and not _DRUMS_NOT.search(a))
        return f"Yes, I can hear {aspect}."
    aspect = next(a for a in aspects if _DRUMS_NO.match(a))
    return f"No, there {'are' if aspect.endswith('drums') else 'is'} {aspect}."


def _answer_tempo(aspects: list[str], r: random.Random) -> str | None:
    found = list(dict.fromkeys(a for a in aspects if _TEMPO.match(a) or a in _TEMPO_WORDS))
    if len(found) != 1:
        return None  # none, or a tempo that changes
    m = _TEMPO.match(found[0])
    if m:
        return r.choice([f"The tempo is {m.group(1)}.", f"It has {_a(found[0])}."])
    return f"It is {found[0]}."


#: answer builders of the kinds read from the shown aspects alone (vocals: _answer_vocals)
ANSWERS: dict[str, Callable[[list[str], random.Random], str | None]] = {
    "style": _answer_style, "mood": _answer_mood, "instruments": _answer_instruments,
    "tempo": _answer_tempo, "drums": _answer_drums,
}
QA_KINDS = ("vocals", *ANSWERS)


# aspects that only repeat the line's last word (as Facts.summary() leaves out NO_VOICE_TAGS)
_VOCALS_WORDS = ("vocals", "no vocals", "no vocal", "no voice", "no voices")


def shown_tags(aspects: Sequence[str]) -> list[str]:
    """The aspects the tags line names: up to :data:`MAX_TAGS` cleaned aspects in the row's
    order, leaving out "vocals", "no vocals", "no voice" ... (the line's last word says that)."""
    return [a for a in clean_aspects(aspects) if a not in _VOCALS_WORDS][:MAX_TAGS]


def tags_line(aspects: Sequence[str], caption: str = "") -> str:
    """``Tags: a, b, ..., vocals``: :func:`shown_tags`, then ``vocals`` / ``no vocals`` when
    :func:`vocals` is sure (from the aspects, else the caption), as ``Facts.summary()`` ends its
    tags with the vocals fact."""
    tags = shown_tags(aspects)
    says = vocals(clean_aspects(aspects), caption)
    if says is not None:
        tags.append("vocals" if says else "no vocals")
    return "Tags: " + ", ".join(tags)


def row_qa(aspects: Sequence[str], rng: random.Random, qa_per_row: int = QA_PER_ROW
           ) -> list[tuple[str, Turn]]:
    """Up to ``qa_per_row`` (kind, Turn) pairs, kinds and wordings drawn from ``rng``.

    Answers say only what the tags line shows: they are read from :func:`shown_tags`, and the
    vocals answer from :func:`vocals` of all the aspects (the line's last word) without the
    caption. A kind the shown aspects do not support is not asked.
    """
    shown, every = shown_tags(aspects), clean_aspects(aspects)
    says = vocals(every)
    sung = bool(says) and any(_aspect_says(a) and _sings(a) for a in every)
    questions = dict(QUESTIONS)
    if says and not sung:  # a voice that speaks: not "Is there any singing?"
        questions["vocals"] = QUESTIONS["vocals"][:1]
    answers = {}
    voice = _answer_vocals(shown, says, sung)
    if voice is not None:
        answers["vocals"] = voice
    for kind, answer in ANSWERS.items():
        a = answer(shown, rng)
        if a is not None:
            answers[kind] = a
    kinds = rng.sample(sorted(answers), min(qa_per_row, len(answers)))
    return [(k, Turn(rng.choice(questions[k]), answers[k])) for k in kinds]


def text_samples(path: str | os.PathLike, split: str = "train", seed: int = 0,
                 qa_per_row: int = QA_PER_ROW) -> list[TextSample]:
    """Text-only samples of the MusicCaps CSV at ``path``: per row a caption sample and, when its
    aspects support any question, a Q&A sample of up to ``qa_per_row`` turns.

    ``split="train"``: only rows with ``is_audioset_eval`` False. The others are the MusicCaps
    evaluation set of the LP-MusicCaps protocol and must never be trained on; ``split="eval"``
    returns them for tests and inspection only. The same ``seed`` gives the same samples.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if qa_per_row < 0:
        raise ValueError(f"qa_per_row must be >= 0, got {qa_per_row}")
    out = []
    for row in read_musiccaps(path):
        if row["is_audioset_eval"] != (split == "eval"):
            continue
        ytid, caption = row["ytid"], _clean(row["caption"])
        line = tags_line(row["aspect_list"], caption)
        out.append(TextSample(f"{ytid}/caption", line, [Turn(CAPTION_INSTRUCTION, caption)],
                              kinds=["caption"]))
        qa = row_qa(row["aspect_list"], random.Random(f"{SOURCE}:{seed}:{ytid}"), qa_per_row)
        if qa:
            out.append(TextSample(f"{ytid}/qa", line, [t for _, t in qa],
                                  kinds=[k for k, _ in qa]))
    return out


def summary(samples: Sequence[TextSample]) -> dict:
    """Counts: rows, samples, turns, Q&A turns per kind, and per row whether the tags line says
    vocals (``yes``), no vocals (``no``) or nothing (``unknown``)."""
    lines = {s.id.rsplit("/", 1)[0]: s.tags_line for s in samples}
    voc = Counter("no" if ln.endswith(("Tags: no vocals", ", no vocals"))
                  else "yes" if ln.endswith(("Tags: vocals", ", vocals")) else "unknown"
                  for ln in lines.values())
    kinds = Counter(k for s in samples for k in s.kinds)
    return {
        "rows": len(lines), "samples": len(samples),
        "caption_samples": sum(1 for s in samples if s.kinds == ["caption"]),
        "qa_samples": sum(1 for s in samples if s.kinds and "caption" not in s.kinds),
        "turns": sum(len(s.turns) for s in samples),
        "qa_kinds": {k: kinds[k] for k in QA_KINDS if kinds[k]},
        "vocals": {k: voc[k] for k in ("yes", "no", "unknown")},
    }
