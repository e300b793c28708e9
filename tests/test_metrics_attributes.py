"""Attribute parser: a table of phrasings (plain, hedged, negated, adversarial) and scoring."""

from __future__ import annotations

import pytest

from musilingo.metrics.attributes import (
    parse_drums,
    parse_instruments,
    parse_key,
    parse_meter,
    parse_style,
    parse_tempo,
    score_attribute,
)
from musilingo.music import FAST_FROM_BPM, SLOW_BELOW_BPM, pitch_class, tempo_class

TRUTH = {
    "tempo_bpm": 130.0, "meter": "3/4", "instrument_families": ["piano", "strings"],
    "drums": False, "key_tonic": "F#", "key_mode": "minor", "style": "waltz",
}  # fmt: skip

# (attribute, answer, truth overrides, expected score)
TABLE = [
    # tempo: numbers
    ("tempo", "The tempo is 120 bpm.", {"tempo_bpm": 125}, 1.0),
    ("tempo", "around 90 beats per minute", {"tempo_bpm": 95}, 1.0),
    ("tempo", "around 90 beats per minute", {"tempo_bpm": 130}, 0.0),
    ("tempo", "It moves at about 60 BPM", {"tempo_bpm": 62}, 1.0),
    ("tempo", "roughly 100-110 bpm", {"tempo_bpm": 104}, 1.0),
    ("tempo", "The tempo is 72, quite relaxed", {"tempo_bpm": 70}, 1.0),
    ("tempo", "a slow 140 bpm?", {"tempo_bpm": 140}, 1.0),  # the number wins over the word
    # tempo: words
    ("tempo", "It is a fast piece.", {"tempo_bpm": 150}, 1.0),
    ("tempo", "Slow and melancholic.", {"tempo_bpm": 60}, 1.0),
    ("tempo", "moderate tempo", {"tempo_bpm": 100}, 1.0),
    ("tempo", "medium tempo", {"tempo_bpm": 100}, 1.0),
    ("tempo", "An upbeat, lively tune", {"tempo_bpm": 128}, 1.0),
    ("tempo", "brisk", {"tempo_bpm": 128}, 1.0),
    ("tempo", "Andante.", {"tempo_bpm": 90}, 1.0),
    ("tempo", "Allegro con brio", {"tempo_bpm": 140}, 1.0),
    ("tempo", "adagio", {"tempo_bpm": 140}, 0.0),
    ("tempo", "slow to moderate", {"tempo_bpm": 80}, 0.5),
    ("tempo", "moderately fast", {"tempo_bpm": 124}, 0.5),
    # tempo: negation
    ("tempo", "It is not fast.", {"tempo_bpm": 130}, 0.0),
    ("tempo", "It is not fast.", {"tempo_bpm": 60}, 0.5),
    ("tempo", "neither fast nor slow", {"tempo_bpm": 100}, 1.0),
    ("tempo", "It's not slow, it's fast", {"tempo_bpm": 130}, 1.0),
    ("tempo", "Not slow but rather quick", {"tempo_bpm": 130}, 1.0),
    ("tempo", "breakfast music for the steady hands", {"tempo_bpm": 130}, 0.0),  # claims nothing
    ("tempo", "I can't tell.", {"tempo_bpm": 130}, 0.0),
    # meter
    ("meter", "It is in 3/4 time.", {}, 1.0),
    ("meter", "waltz time", {}, 1.0),
    ("meter", "triple meter", {}, 1.0),
    ("meter", "common time", {"meter": "4/4"}, 1.0),
    ("meter", "common time", {}, 0.0),
    ("meter", "4/4", {"meter": "4/4"}, 1.0),
    ("meter", "The meter is 6/8.", {"meter": "6/8"}, 1.0),
    ("meter", "compound duple meter", {"meter": "6/8"}, 1.0),
    ("meter", "2/4, like a march", {"meter": "2/4"}, 1.0),
    ("meter", "cut time", {"meter": "2/2"}, 1.0),
    ("meter", "It is not a waltz; it is in 4/4.", {"meter": "4/4"}, 1.0),
    ("meter", "not in 3/4", {}, 0.0),
    ("meter", "played at 120 bpm with 2 guitars", {}, 0.0),
    ("meter", "1/2 of the piece is loud", {"meter": "2/4"}, 0.0),
    # instruments (set F1 on GM families)
    ("instruments", "piano and violin", {}, 1.0),
    ("instruments", "A solo piano.", {}, 2 / 3),
    ("instruments", "piano, cello and drums", {}, 1.0),
    ("instruments", "an electric guitar and a bass guitar", {"instrument_families": ["guitar", "bass"]}, 1.0),
    ("instruments", "bass guitar", {"instrument_families": ["guitar"]}, 0.0),
    ("instruments", "saxophone, trumpet and double bass", {"instrument_families": ["reed", "brass", "bass"]}, 1.0),
    ("instruments", "There is no piano, only strings", {}, 2 / 3),
    ("instruments", "flute and oboe", {"instrument_families": ["pipe", "reed"]}, 1.0),
    ("instruments", "steel drums", {"instrument_families": ["percussive"]}, 1.0),
    ("instruments", "an English horn", {"instrument_families": ["reed"]}, 1.0),
    ("instruments", "It sounds nice.", {}, 0.0),
    ("instruments", "church organ and choir", {"instrument_families": ["organ", "ensemble"]}, 1.0),
    ("instruments", "synth pads and a lead synth", {"instrument_families": ["synth pad", "synth lead"]}, 1.0),
    ("instruments", "the bassoon", {"instrument_families": ["reed"]}, 1.0),
    # drums
    ("drums", "no drums", {}, 1.0),
    ("drums", "without percussion", {}, 1.0),
    ("drums", "There is a drum kit.", {"drums": True}, 1.0),
    ("drums", "There is a drum kit.", {}, 0.0),
    ("drums", "The drums are absent.", {}, 1.0),
    ("drums", "Drums are not present in this recording.", {}, 1.0),
    ("drums", "The drums are not loud but steady", {"drums": True}, 1.0),
    ("drums", "snare and hi-hats keep time", {"drums": True}, 1.0),
    ("drums", "It has no percussion at all", {}, 1.0),
    ("drums", "a piano piece", {}, 0.0),
    ("drums", "steel drums melody", {}, 0.0),  # steel drums are pitched: no claim on drums
    ("drums", "There isn't any drumming.", {}, 1.0),
    ("drums", "No doubt the drums drive it", {"drums": True}, 1.0),
    # key
    ("key", "F# minor", {}, 1.0),
    ("key", "It's in F♯ minor.", {}, 1.0),
    ("key", "G-flat minor", {}, 1.0),  # enharmonic tonic
    ("key", "in the key of B flat major", {"key_tonic": "Bb", "key_mode": "major"}, 1.0),
    ("key", "E-flat", {"key_tonic": "Eb", "key_mode": "major"}, 0.5),
    ("key", "The key is A minor.", {"key_tonic": "A", "key_mode": "minor"}, 1.0),
    ("key", "a minor key", {"key_tonic": "A", "key_mode": "minor"}, 0.5),  # article, mode only
    ("key", "It isn't in a minor key.", {"key_tonic": "C", "key_mode": "major"}, 0.5),
    ("key", "It isn't in a minor key.", {"key_tonic": "C", "key_mode": "minor"}, 0.0),
    ("key", "A piano plays a major role", {"key_tonic": "A", "key_mode": "major"}, 0.0),
    ("key", "C major", {"key_tonic": "C", "key_mode": "minor"}, 0.5),
    ("key", "in c sharp minor", {"key_tonic": "C#", "key_mode": "minor"}, 1.0),
    ("key", "Bb major", {"key_tonic": "A#", "key_mode": "major"}, 1.0),
    ("key", "the music is in D", {"key_tonic": "D", "key_mode": "major"}, 0.5),
    ("key", "The key is not D major, it is E minor.", {"key_tonic": "E", "key_mode": "minor"}, 1.0),
    ("key", "Part B is louder", {"key_tonic": "B", "key_mode": "major"}, 0.0),
    ("key", "It is in a minor mode.", {"key_tonic": "D", "key_mode": "minor"}, 0.5),
    # style
    ("style", "It's a waltz.", {}, 1.0),
    ("style", "A bossa nova groove", {"style": "bossa"}, 1.0),
    ("style", "bossa", {"style": "bossa nova"}, 1.0),
    ("style", "jazz swing", {"style": "swing"}, 1.0),
    ("style", "It is not a waltz, it is a tango.", {"style": "tango"}, 1.0),
    ("style", "not a waltz", {}, 0.0),
    ("style", "an Irish reel", {"style": "reel"}, 0.5),  # "irish" -> celtic: a hedge
    ("style", "a lively jig", {"style": "jig"}, 1.0),
    ("style", "a hornpipe", {"style": "hornpipe"}, 1.0),
    ("style", "a Bach chorale", {"style": "chorale"}, 1.0),
    ("style", "rock and roll", {"style": "rock"}, 1.0),
    ("style", "a country song", {"style": "blues"}, 0.0),
    ("style", "marching band music", {"style": "march"}, 1.0),
    ("style", "a polka", {"style": "polka"}, 1.0),
    ("style", "bluesy", {"style": "blues"}, 1.0),
    ("style", "I don't know", {}, 0.0),
]  # fmt: skip


@pytest.mark.parametrize("attr,answer,over,expected", TABLE, ids=[f"{a}:{t}" for a, t, _, _ in TABLE])
def test_table(attr, answer, over, expected):
    truth = {**TRUTH, **over}
    assert score_attribute(attr, answer, truth) == pytest.approx(expected)


def test_table_is_large():
    assert len(TABLE) >= 60


def test_tempo_thresholds_in_one_place():
    assert (SLOW_BELOW_BPM, FAST_FROM_BPM) == (76.0, 120.0)
    assert [tempo_class(b) for b in (75.9, 76, 119.9, 120)] == ["slow", "moderate", "moderate", "fast"]


def test_parsers_return_claims():
    assert parse_tempo("not fast").negative == ["fast"]
    assert parse_meter("in 6/8").positive == ["6/8"]
    assert parse_instruments("no guitar, just a cello").positive == ["strings"]
    assert parse_instruments("no guitar, just a cello").negative == ["guitar"]
    assert parse_drums("drumless") is False
    assert parse_drums("an acoustic piano") is None
    k = parse_key("C# minor")
    assert k.tonic.positive == ["C#"] and k.mode.positive == ["minor"]
    assert parse_style("bossa-nova").positive == ["bossa nova"]
    assert pitch_class("Gb") == pitch_class("F#") == 6
    assert pitch_class("B#") == 0 and pitch_class("Cb") == 11


def test_unknown_attribute_and_missing_truth():
    with pytest.raises(ValueError):
        score_attribute("loudness", "loud", TRUTH)
    with pytest.raises(KeyError):
        score_attribute("tempo", "fast", {"meter": "3/4"})
