"""The shared music knowledge (musilingo.music) and the attribute schema (musilingo.attributes)."""

from __future__ import annotations

import pytest

from musilingo import music
from musilingo.attributes import ATTRIBUTES, SCHEMA, class_sentence, get_attribute, truth_class
from musilingo.data.captions import meter_phrase
from musilingo.metrics.attributes import parse_instruments, parse_meter, score_attribute


@pytest.mark.parametrize("name,pc", [("C", 0), ("F#", 6), ("Gb", 6), ("G-flat", 6), ("f sharp", 6),
                                     ("F\u266f", 6), ("B#", 0), ("Cb", 11), ("bb", 10)])
def test_pitch_class(name, pc):
    assert music.pitch_class(name) == pc


@pytest.mark.parametrize("bad", ["", "H", "C##", "Cx", "do"])
def test_pitch_class_rejects(bad):
    with pytest.raises(ValueError, match="not a tonic"):
        music.pitch_class(bad)


def test_tonic_spelling_follows_mode():
    assert music.tonic_name(8, "minor") == "G#" and music.tonic_name(8, "major") == "Ab"
    assert music.tonic_name(1, "dorian") == "C#" and music.tonic_name(1, None) == "Db"
    assert music.transpose_tonic("A", "minor", 3) == "C"
    assert music.transpose_tonic("B", "major", -5) == "F#"
    # one spelling per (pitch class, mode): every name of a pitch class spells the same
    assert {music.tonic_name(music.pitch_class(n), "major") for n in ("F#", "Gb")} == {"F#"}


def test_chord_spelling_uses_flats_for_flat_keys():
    assert music.uses_flats(5, "major") and music.uses_flats(2, "minor")  # F major, D minor
    assert not music.uses_flats(7, "major") and not music.uses_flats(4, "minor")
    assert music.note_name(10, flats=True) == "Bb" and music.note_name(10, flats=False) == "A#"


def test_tempo_and_meter_classes():
    assert [music.tempo_class(b) for b in (75.9, 76, 119.9, 120)] == \
        ["slow", "moderate", "moderate", "fast"]
    assert music.meter_category("3/4") == "triple simple"
    assert music.meter_category("12/8") == "quadruple compound"
    assert music.meter_category("5/4") == "irregular"
    with pytest.raises(ValueError, match="time signature"):
        music.meter_category("three")
    assert music.meter_name("3/4") == "waltz time" and music.meter_name("11/8") is None


def test_every_meter_phrase_parses_back_to_exactly_its_signature():
    # The caption generator's gloss and the answer parser must agree: "4/2 (duple time)" was
    # read as two claims (4/2 and duple simple) and earned half of every right 4/2 answer.
    for sig in music.METER_NAMES:
        claims = parse_meter(f"The music is in {meter_phrase(sig)}.")
        assert claims.positive == [sig], (sig, claims.positive)


def test_every_family_word_parses_back_to_exactly_its_family():
    for fam in music.GM_FAMILIES:
        claims = parse_instruments(f"The instruments are {music.family_word(fam)}.")
        assert claims.positive == [fam], (fam, claims.positive)


def test_canonical_style_folds_synonyms():
    assert music.canonical_style("Bossa-Nova") == "bossa nova"
    assert music.canonical_style("hip-hop") == "hip hop"
    assert music.canonical_style("Cha Cha Cha") == "cha-cha"
    assert music.canonical_style("Krautrock") == "krautrock"


def test_schema_questions_are_the_first_training_wordings():
    from musilingo.data import captions

    for name, spec in SCHEMA.items():
        assert captions._Q[name][0] == spec.question
    assert ATTRIBUTES == ("tempo", "meter", "key", "instruments", "drums", "style")


def test_schema_classes_and_sentences():
    truth = {"tempo_bpm": 130, "meter": "6/8", "key_tonic": "Gb", "key_mode": "Major",
             "instrument_families": ["Reed", "piano"], "drums": False, "style": "bossa"}
    assert truth_class("tempo", truth) == "fast"
    assert truth_class("key", truth) == ("F#", "major")
    assert truth_class("instruments", truth) == frozenset({"reed", "piano"})
    assert truth_class("style", truth) == "bossa nova"
    for attr in ATTRIBUTES:
        assert SCHEMA[attr].present(truth)
        assert score_attribute(attr, class_sentence(attr, truth_class(attr, truth)), truth) == 1.0
    assert not SCHEMA["key"].present({"key_tonic": None})
    with pytest.raises(ValueError, match="unknown attribute 'loudness'"):
        get_attribute("loudness")


def test_chord_labels_and_symbols():
    from musilingo.music import chord_label, chord_symbol

    assert chord_label(10, "min") == "Bb:min" and chord_label(6, "maj") == "F#:maj"
    assert chord_symbol("A:min") == "Am" and chord_symbol("C:maj") == "C"
    assert chord_symbol("N") == "N.C."
    assert chord_label(7, "7") == "G:7" and chord_symbol("G:7") == "G7"
    assert chord_symbol("Eb:maj7") == "Ebmaj7" and chord_symbol("D:min7") == "Dm7"
    with pytest.raises(ValueError):
        chord_label(0, "dim")


def test_mma_chords_in_harte_syntax():
    from musilingo.data.mma_styles import harte_name

    assert harte_name("Bbm7") == "Bb:min7" and harte_name("F#") == "F#:maj"
    assert harte_name("Cm7b5") == "C:hdim7" and harte_name("GM7") == "G:maj7"
    with pytest.raises(ValueError, match="not a chord"):
        harte_name("Hsus4")
