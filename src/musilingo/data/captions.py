"""Captions and Q&A about a clip, written only from its known attributes (the rendered truth).

What it does: turns a record's ``attributes`` (key_tonic, key_mode, tempo_bpm, meter,
instruments, instrument_families, drums, style, composer, num_parts, lead_instrument...) into
MusicCaps-style captions (many templates, varied order and wording) and MusicInstruct-style
questions with short (1-2 sentence) or long (caption-like) answers; writes the MusicInstruct JSON
layout so one loader reads ours and theirs. Output is deterministic for a seed.

What it does not: claim anything the attributes do not carry. A missing attribute is never
mentioned; ``drums=False`` is said as "no drums" or not at all; voices/vocals, mood and recording
quality are never mentioned (the audio is instrumental, synthesized, of unknown mood). Answers
spell attributes so that a parser can read them back: "about 96 bpm, a moderate tempo",
"in 3/4 (waltz time)", "G minor", instrument names as lower-cased General MIDI names.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from musilingo.attributes import SCHEMA
from musilingo.data.manifest import QA, Record, atomic_write_text
from musilingo.music import meter_name, tempo_class

DEFAULT_SAMPLING_RATE = 24_000  # what musilingo.data.render writes

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve")


# ------------------------------------------------------------------------------------------
# Phrases for single attributes


def bpm_number(bpm: float) -> str:
    """The bpm as written in text: whole, or with one decimal where rounding would cross a tempo
    class threshold (75.5 is slow, "76 bpm" reads as moderate)."""
    return f"{round(bpm):d}" if tempo_class(round(bpm)) == tempo_class(bpm) else f"{bpm:.1f}"


def tempo_phrase(bpm: float) -> str:
    """E.g. "about 96 bpm, a moderate tempo"."""
    return f"about {bpm_number(bpm)} bpm, a {tempo_class(bpm)} tempo"


def meter_phrase(meter: str) -> str:
    """E.g. "3/4 (waltz time)"."""
    name = meter_name(meter)
    return f"{meter} ({name})" if name else meter


def key_phrase(tonic: str, mode: str) -> str:
    """E.g. "G minor", "D dorian"."""
    return f"{tonic} {mode}"


def instrument_phrase(gm_name: str) -> str:
    """A General MIDI program name in running text: "Acoustic Grand Piano" -> "acoustic grand
    piano", "String Ensemble 1" -> "string ensemble", "Lead 1 (square)" -> "square lead"."""
    s = gm_name.strip()
    m = re.match(r"^(Lead|Pad|FX)\s*\d+\s*\(?([^()]*?)\)?$", s)  # pretty_midi: "Lead 4 chiff"
    if m:
        kind = {"Lead": "synth lead", "Pad": "synth pad", "FX": "synth effect"}[m.group(1)]
        return f"{m.group(2).lower()} {kind}"
    s = re.sub(r"\s+\d+$", "", s)
    s = re.sub(r"\s*\(([^)]*)\)", r" (\1)", s)
    return s.lower()


def _article(phrase: str) -> str:
    if phrase.split(" (")[0].endswith(("strings", "pipes", "drums")):
        return phrase  # plural nouns take no article
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f" and {items[-1]}"


def _number(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _style_noun(attrs: Mapping[str, Any]) -> str | None:
    style = attrs.get("style")
    if not style:
        return None
    s = str(style)
    if attrs.get("dance_type"):
        return f"{s} (a traditional dance tune)" if s in ("reel", "jig", "hornpipe") else s
    return s


def _has(attrs: Mapping[str, Any], key: str) -> bool:
    v = attrs.get(key)
    if v is None:
        return False
    if isinstance(v, (str, list, tuple)):
        return len(v) > 0
    return True


# ------------------------------------------------------------------------------------------
# Caption sentences. Each builder returns a sentence or None when its attribute is missing.


def _s_opening(a: Mapping[str, Any], r: random.Random) -> str | None:
    style = str(a["style"]) if _has(a, "style") else None
    comp = a.get("composer") if _has(a, "composer") else None
    if style and _has(a, "dance_type"):
        return r.choice([
            f"This is an instrumental {style}, a traditional dance tune.",
            f"This traditional {style} is played by synthesized instruments.",
            f"The music is a lively traditional {style}." if style in ("reel", "jig", "polka")
            else f"The music is a traditional {style}.",
            f"A traditional {style} tune rendered with MIDI instruments.",
        ])
    if style and comp:
        return r.choice([
            f"This is an instrumental {style} piece by {comp}.",
            f"An instrumental rendition of {_article(style)} piece composed by {comp}.",
            f"This {style} piece by {comp} is played here by synthesized instruments.",
        ])
    if style:
        return r.choice([
            f"This is an instrumental {style} piece.",
            f"This is {_article(style)} track played by synthesized instruments.",
            f"The music is an instrumental piece in {style} style.",
            f"This instrumental track is in {_article(style)} style.",
            f"{_cap(_article(style))} piece rendered with MIDI instruments.",
        ])
    if comp:
        return r.choice([f"This is an instrumental piece by {comp}.",
                         f"A piece composed by {comp}, played by synthesized instruments."])
    return None


def _s_instruments(a: Mapping[str, Any], r: random.Random) -> str | None:
    if not _has(a, "instruments"):
        return None
    names = list(dict.fromkeys(instrument_phrase(x) for x in a["instruments"]))
    lead = instrument_phrase(a["lead_instrument"]) if _has(a, "lead_instrument") else None
    if len(names) == 1:
        n = names[0]
        parts = a.get("num_parts")
        if isinstance(parts, int) and parts > 1:
            return r.choice([
                f"All {_number(parts)} parts are played on {_article(n)}.",
                f"The music is played entirely on {n}, in {_number(parts)} parts.",
            ])
        return r.choice([f"The only instrument is {_article(n)}.",
                         f"It features {_article(n)} playing alone.",
                         f"The piece is performed on {_article(n)}."])
    listed = _join([_article(n) for n in names])
    if lead and lead in names:
        others = _join([_article(n) for n in names if n != lead])
        return r.choice([
            f"The melody is played by {_article(lead)}, accompanied by {others}.",
            f"{_cap(_article(lead))} carries the melody over {others}.",
            f"It features {_article(lead)} on the melody, with {others} underneath.",
        ])
    return r.choice([
        f"The instrumentation consists of {listed}.",
        f"It features {listed}.",
        f"The song features {listed}.",
        f"You can hear {listed}.",
        f"Instruments heard: {_join(names)}.",
    ])


def _s_drums(a: Mapping[str, Any], r: random.Random) -> str | None:
    if "drums" not in a or a["drums"] is None:
        return None
    if a["drums"]:
        return r.choice([
            "A drum kit keeps the beat.",
            "The drums play a steady groove.",
            "Drums provide the rhythm.",
            "There is a drum groove underneath.",
            "The percussion plays a steady beat on the drum kit.",
        ])
    return r.choice([
        "There are no drums.",
        "There is no percussion in this piece.",
        "There are no drums or percussion.",
        None, None,  # often simply unmentioned
    ])


def _s_tempo_meter(a: Mapping[str, Any], r: random.Random) -> str | None:
    has_t, has_m = _has(a, "tempo_bpm"), _has(a, "meter")
    if has_t and has_m:
        bpm, meter = float(a["tempo_bpm"]), str(a["meter"])
        cls = tempo_class(bpm)
        return r.choice([
            f"The tempo is {cls} at {tempo_phrase(bpm).replace(f', a {cls} tempo', '')}, "
            f"in {meter_phrase(meter)}.",
            f"It moves at {tempo_phrase(bpm)}, in {meter_phrase(meter)}.",
            f"The piece is in {meter_phrase(meter)} at {tempo_phrase(bpm)}.",
            f"It is played in {meter} time at a {cls} tempo of about {bpm_number(bpm)} bpm.",
        ])
    if has_t:
        bpm = float(a["tempo_bpm"])
        return r.choice([f"The tempo is {tempo_class(bpm)}, {tempo_phrase(bpm)}.".replace(
                             f", a {tempo_class(bpm)} tempo.", "."),
                         f"It is played at {tempo_phrase(bpm)}."])
    if has_m:
        meter = str(a["meter"])
        return r.choice([f"The time signature is {meter_phrase(meter)}.",
                         f"The music is in {meter_phrase(meter)}."])
    return None


def _s_key(a: Mapping[str, Any], r: random.Random) -> str | None:
    if not (_has(a, "key_tonic") and _has(a, "key_mode")):
        return None
    k = key_phrase(a["key_tonic"], a["key_mode"])
    return r.choice([f"The piece is in the key of {k}.", f"It is in {k}.",
                     f"The key is {k}.", f"The harmony centres on {k}."])


def _s_parts(a: Mapping[str, Any], r: random.Random) -> str | None:
    n = a.get("num_parts")
    if not isinstance(n, int) or n < 2 or a.get("instruments") and len(a["instruments"]) == 1:
        return None
    return r.choice([f"The texture has {_number(n)} independent parts.",
                     f"There are {_number(n)} instrumental parts.", None])


def make_caption(attrs: Mapping[str, Any], seed: int = 0) -> str:
    """A MusicCaps-style caption of 2-6 sentences, stating only attributes present in ``attrs``."""
    r = random.Random(f"caption:{seed}")
    opening = _s_opening(attrs, r)
    body = [f(attrs, r) for f in (_s_instruments, _s_drums, _s_tempo_meter, _s_key, _s_parts)]
    body = [s for s in body if s]
    first = body[:1]
    rest = body[1:]
    r.shuffle(rest)
    sentences = ([opening] if opening else []) + first + rest
    if not sentences:
        return "An instrumental piece played by synthesized instruments."
    return " ".join(sentences)


# ------------------------------------------------------------------------------------------
# Questions and answers


# The first wording of each scored attribute is the canonical question evaluation asks.
_Q = {
    "instruments": (SCHEMA["instruments"].question, "Which instruments can you hear?",
                    "What instruments are used in this piece?",
                    "Can you list the instruments in this music?",
                    "What is the instrumentation of this clip?"),
    "tempo": (SCHEMA["tempo"].question, "How fast is this piece?",
              "Is this music slow or fast?", "What is the approximate bpm?",
              "At what tempo is this played?"),
    "meter": (SCHEMA["meter"].question, "What meter is this music in?",
              "How many beats are in a bar?", "Is this in duple or triple time?"),
    "key": (SCHEMA["key"].question, "What is the key of this music?",
            "Is this piece in a major or a minor key?", "Which key does this music use?"),
    "style": (SCHEMA["style"].question, "What genre does this piece belong to?",
              "How would you describe the style of this music?", "What kind of music is this?"),
    "drums": (SCHEMA["drums"].question, "Is there any percussion?",
              "Does this piece have a drum beat?"),
    "lead": ("Which instrument plays the melody?", "What is the lead instrument?",
             "Which instrument carries the main tune?"),
    "parts": ("How many parts or voices are playing?", "How many instruments play together?",
              "How many independent lines can you hear?"),
    "composer": ("Who composed this piece?", "Who is the composer?"),
    "long": ("Describe the music in detail.", "Can you describe this piece of music?",
             "What does this music sound like?", "Give a detailed description of this clip.",
             "Describe this recording.",
             "Tell me about this music."),
}


def _a_instruments(a, r):
    names = list(dict.fromkeys(instrument_phrase(x) for x in a["instruments"]))
    if len(names) == 1:
        return r.choice([f"The only instrument is {_article(names[0])}.",
                         f"It is played on {_article(names[0])}."])
    return r.choice([f"The instruments are {_join(names)}.",
                     f"I can hear {_join([_article(n) for n in names])}.",
                     f"This piece uses {_join(names)}."])


def _a_tempo(a, r):
    bpm = float(a["tempo_bpm"])
    return r.choice([f"The tempo is {tempo_phrase(bpm)}.",
                     f"It is played at {tempo_phrase(bpm)}.",
                     f"{_cap(tempo_phrase(bpm))}."])


def _a_meter(a, r):
    m = str(a["meter"])
    return r.choice([f"The music is in {meter_phrase(m)}.", f"It is in {meter_phrase(m)}.",
                     f"The time signature is {meter_phrase(m)}."])


def _a_key(a, r):
    k = key_phrase(a["key_tonic"], a["key_mode"])
    return r.choice([f"The piece is in {k}.", f"It is in the key of {k}.", f"{k}."])


def _a_style(a, r):
    style = str(a["style"])
    noun = _style_noun(a)
    if not a.get("dance_type") and not noun.endswith(("song", "tune", "chorale", "air", "march",
                                                      "waltz", "polka", "ballad", "polyphony")):
        noun = f"{noun} piece"
    extra = ""
    if _has(a, "genre") and str(a["genre"]).lower() not in style.lower():
        extra = f", in the {a['genre']} family"
    return r.choice([f"This is {_article(noun)}{extra}.", f"It is {_article(noun)}{extra}.",
                     f"The style is {style}{extra}."])


def _a_drums(a, r):
    if a["drums"]:
        return r.choice(["Yes, there are drums keeping the beat.",
                         "Yes, a drum kit plays along.", "Yes, drums provide the rhythm."])
    return r.choice(["No, there are no drums in this piece.",
                     "No, there is no percussion.", "No, it is played without drums."])


def _a_lead(a, r):
    lead = instrument_phrase(a["lead_instrument"])
    return r.choice([f"The melody is played by {_article(lead)}.",
                     f"{_cap(_article(lead))} plays the melody.",
                     f"The lead instrument is {_article(lead)}."])


def _a_parts(a, r):
    n = int(a["num_parts"])
    word = "part" if n == 1 else "parts"
    return r.choice([f"There {'is' if n == 1 else 'are'} {_number(n)} {word}.",
                     f"{_cap(_number(n))} instrumental {word} can be heard."])


def _a_composer(a, r):
    return r.choice([f"It was composed by {a['composer']}.", f"The composer is {a['composer']}."])


_SHORT = (
    ("instruments", ("instruments",), _a_instruments),
    ("tempo", ("tempo_bpm",), _a_tempo),
    ("meter", ("meter",), _a_meter),
    ("key", ("key_tonic", "key_mode"), _a_key),
    ("style", ("style",), _a_style),
    ("drums", ("drums",), _a_drums),
    ("lead", ("lead_instrument",), _a_lead),
    ("parts", ("num_parts",), _a_parts),
    ("composer", ("composer",), _a_composer),
)


def make_qa(attrs: Mapping[str, Any], seed: int = 0, num_long: int = 1) -> list[QA]:
    """One short Q&A per known attribute (question wording drawn per seed) and ``num_long``
    long ones whose answers are caption-like descriptions."""
    r = random.Random(f"qa:{seed}")
    out = []
    for kind, keys, answer in _SHORT:
        if not all(_has(attrs, k) for k in keys):
            continue
        if kind == "parts" and not isinstance(attrs["num_parts"], int):
            continue
        q = r.choice(_Q[kind])
        if kind == "key" and q.startswith("Is this piece in a major") and \
                attrs["key_mode"] not in ("major", "minor"):
            q = _Q[kind][0]
        out.append(QA(question=q, answer=answer(attrs, r), kind=kind, length="short"))
    for j in range(num_long):
        q = r.choice(_Q["long"])
        out.append(QA(question=q, answer=make_caption(attrs, seed=seed * 7919 + 17 + j),
                      kind="description", length="long"))
    return out


# ------------------------------------------------------------------------------------------
# MusicInstruct layout


def write_musicinstruct_json(records: Iterable[Record], path: str | os.PathLike,
                             sampling_rate: int = DEFAULT_SAMPLING_RATE) -> int:
    """Write records' Q&A as MusicInstruct JSON ``{"QA": [{"ytid", "sampling_rate",
    "is_audioset_eval", "question", "answer", ...}]}``; ``ytid`` is the record id and
    ``is_audioset_eval`` marks the test split. Returns the number of Q&A written (atomic write)."""
    rows = []
    for rec in records:
        for qa in rec.qa:
            rows.append({"ytid": rec.id, "sampling_rate": sampling_rate,
                         "is_audioset_eval": rec.split == "test", "question": qa.question,
                         "answer": qa.answer, "kind": qa.kind, "length": qa.length,
                         "split": rec.split, "audio": rec.audio})
    atomic_write_text(Path(path), json.dumps({"QA": rows}, ensure_ascii=False, indent=1) + "\n")
    return len(rows)

