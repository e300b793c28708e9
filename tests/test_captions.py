"""Captions and Q&A from attributes: never claim a missing attribute; answers parse back."""

from __future__ import annotations

import json
import random
import re

import pytest

from musilingo.data import captions
from musilingo.data.manifest import QA, Record

GM_SAMPLE = ["Acoustic Grand Piano", "Church Organ", "Violin", "Cello", "Flute", "Trumpet",
             "Acoustic Bass", "Electric Guitar (jazz)", "String Ensemble 1", "Pizzicato Strings",
             "Lead 1 (square)", "Pad 2 (warm)", "Fiddle", "Clarinet", "Tuba", "Accordion"]
STYLES = ["bossa nova", "Baroque chorale", "waltz", "reel", "German folk song", "swing",
          "Renaissance polyphony", "tango", "R&B"]
FULL_KEYS = ("key", "tempo_bpm", "meter", "instruments", "drums", "style", "composer",
             "num_parts", "lead_instrument")
VOCAL_WORDS = re.compile(r"\b(vocal|vocals|voice|voices|sing|singer|singing|sung|lyrics|choir)\b",
                         re.I)


def random_attrs(r: random.Random) -> dict:
    instruments = r.sample(GM_SAMPLE, r.randint(1, 4))
    a = {"key_tonic": r.choice(["C", "G", "Eb", "F#", "A"]),
         "key_mode": r.choice(["major", "minor", "dorian"]),
         "tempo_bpm": round(r.uniform(40, 220), 1), "meter": r.choice(["2/4", "3/4", "4/4", "6/8"]),
         "instruments": instruments, "drums": r.random() < 0.5, "style": r.choice(STYLES),
         "composer": r.choice(["Johann Sebastian Bach", "Joseph Haydn"]),
         "num_parts": r.randint(1, 6), "lead_instrument": instruments[0]}
    if a["style"] == "reel":
        a["dance_type"] = "reel"
    for k in FULL_KEYS:
        if r.random() < 0.35:
            for kk in (("key_tonic", "key_mode") if k == "key" else (k,)):
                a.pop(kk, None)
    return a


def check_text(text: str, a: dict, removed_instruments: list[str]) -> None:
    low = text.lower()
    assert not VOCAL_WORDS.search(text), text
    if "tempo_bpm" not in a:
        assert "bpm" not in low and "tempo" not in low, text
    if "meter" not in a:
        assert not re.search(r"\b\d+/\d+\b", text) and "time signature" not in low, text
    if "key_tonic" not in a:
        assert not re.search(r"\b(major|minor|dorian|key)\b", low), text
    if "drums" not in a:
        assert "drum" not in low and "percussion" not in low, text
    elif a["drums"] is False:
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if "drum" in sentence.lower() or "percussion" in sentence.lower():
                assert re.search(r"\b(no|without)\b", sentence.lower()), sentence
    if "composer" not in a:
        assert "bach" not in low and "haydn" not in low and "compos" not in low, text
    if "instruments" not in a:
        for name in removed_instruments:
            if "lead_instrument" in a and name == a["lead_instrument"]:
                continue
            assert captions.instrument_phrase(name) not in low, text
    if "style" not in a:
        if "meter" in a:  # "3/4 (waltz time)" names the meter, not the style
            low = low.replace(captions.meter_phrase(a["meter"]).lower(), "")
        for s in STYLES:
            assert s.lower() not in low, text


def test_never_claims_missing_attributes():
    r = random.Random(0)
    for i in range(600):
        full_instruments = list(GM_SAMPLE)
        a = random_attrs(r)
        cap = captions.make_caption(a, seed=i)
        assert cap and cap.endswith(".")
        check_text(cap, a, full_instruments)
        for qa in captions.make_qa(a, seed=i):
            check_text(qa.answer, a, full_instruments)
            check_text(qa.question, a, full_instruments) if qa.kind == "description" else None


def test_qa_kinds_follow_attributes():
    a = {"tempo_bpm": 96.0, "meter": "3/4", "key_tonic": "G", "key_mode": "minor",
         "instruments": ["Violin", "Cello"], "drums": False, "style": "waltz", "num_parts": 2,
         "lead_instrument": "Violin"}
    kinds = {q.kind for q in captions.make_qa(a, seed=3)}
    assert kinds == {"tempo", "meter", "key", "instruments", "drums", "style", "parts", "lead",
                     "description"}
    assert {q.kind for q in captions.make_qa({"tempo_bpm": 80.0}, seed=1)} == {"tempo",
                                                                               "description"}


def test_answers_parse_back():
    a = {"tempo_bpm": 96.4, "meter": "3/4", "key_tonic": "G", "key_mode": "minor",
         "instruments": ["Violin"], "drums": True}
    for seed in range(20):
        qa = {q.kind: q.answer for q in captions.make_qa(a, seed=seed)}
        assert "about 96 bpm, a moderate tempo" in qa["tempo"].lower()
        assert "3/4 (waltz time)" in qa["meter"]
        assert "G minor" in qa["key"]
        assert "violin" in qa["instruments"].lower()
        assert qa["drums"].startswith("Yes")


@pytest.mark.parametrize("attrs", [
    {"tempo_bpm": 75.5, "meter": "4/2", "key_tonic": "B", "key_mode": "phrygian"},
    {"tempo_bpm": 119.6, "meter": "3/1", "key_tonic": "F#", "key_mode": "mixolydian"},
    {"tempo_bpm": 75.4, "meter": "4/1", "key_tonic": "Bb", "key_mode": "dorian"},
    {"tempo_bpm": 120.0, "meter": "6/8", "key_tonic": "C", "key_mode": "aeolian"},
    {"tempo_bpm": 96.4, "meter": "2/2", "key_tonic": "Eb", "key_mode": "lydian"},
])
def test_every_scored_answer_earns_full_marks_on_its_own_truth(attrs):
    """The generator's answer is the truth in words, so the scorer must give it 1: a modal key
    ("B phrygian") earned half (the parser knew only major / minor), 3/1 and 4/1 no meter at all,
    and 75.5 bpm, written "about 76 bpm", read as moderate."""
    from musilingo.metrics.attributes import score_attribute

    from musilingo.data.render.midi_analysis import families_of

    names = ["Fiddle", "FX 4 (atmosphere)"]
    attrs = {**attrs, "instruments": names, "instrument_families": families_of(names),
             "drums": False, "style": "Baroque chorale"}
    for seed in range(30):
        for qa in captions.make_qa(attrs, seed=seed):
            if qa.kind in ("tempo", "meter", "key", "instruments", "drums", "style"):
                assert score_attribute(qa.kind, qa.answer, attrs) == 1.0, (qa.kind, qa.answer)


@pytest.mark.parametrize("bpm,cls", [(40, "slow"), (75.9, "slow"), (76, "moderate"),
                                     (119.9, "moderate"), (120, "fast"), (200, "fast")])
def test_tempo_classes(bpm, cls):
    assert captions.tempo_class(bpm) == cls


def test_deterministic_and_varied():
    a = {"tempo_bpm": 130.0, "meter": "4/4", "instruments": ["Trumpet", "Acoustic Bass"],
         "drums": True, "style": "swing", "key_tonic": "Bb", "key_mode": "major"}
    assert captions.make_caption(a, seed=5) == captions.make_caption(a, seed=5)
    assert captions.make_qa(a, seed=5) == captions.make_qa(a, seed=5)
    assert len({captions.make_caption(a, seed=s) for s in range(50)}) > 20
    questions = {q.question for s in range(50) for q in captions.make_qa(a, seed=s)
                 if q.kind == "tempo"}
    assert len(questions) >= 4


def test_instrument_phrases():
    assert captions.instrument_phrase("String Ensemble 1") == "string ensemble"
    assert captions.instrument_phrase("Lead 1 (square)") == "square synth lead"
    assert captions.instrument_phrase("Acoustic Grand Piano") == "acoustic grand piano"


def test_write_musicinstruct_json(tmp_path):
    recs = [Record(id="a", audio="audio/a.wav", split="test",
                   qa=[QA("What is the tempo?", "About 90 bpm, a moderate tempo.", "tempo")]),
            Record(id="b", audio="audio/b.wav", split="train",
                   qa=[QA("Describe it.", "A waltz.", "description", "long")])]
    n = captions.write_musicinstruct_json(recs, tmp_path / "mi.json")
    data = json.loads((tmp_path / "mi.json").read_text())
    assert n == 2 and len(data["QA"]) == 2
    row = data["QA"][0]
    for k in ("ytid", "sampling_rate", "is_audioset_eval", "question", "answer"):
        assert k in row
    assert row["ytid"] == "a" and row["is_audioset_eval"] is True
    assert data["QA"][1]["is_audioset_eval"] is False
