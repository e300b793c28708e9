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


def test_every_gm_program_the_renderer_can_use_reads_back_as_its_truth_family():
    """The truth's instrument families (gm_program_family) and the answer parser must agree on
    the caption generator's name for every program: GM 110 "Fiddle" was ethnic in the truth but
    strings to the parser, and "atmosphere synth effect" read as a synth lead."""
    import pretty_midi

    from musilingo.data.captions import instrument_phrase
    from musilingo.data.render.instruments import VOCAL_OR_FX_PROGRAMS
    from musilingo.data.render.midi_analysis import families_of

    unparsed = {87}  # "bass + lead synth lead" names a bass too; no renderer table uses it
    for program in sorted(set(range(128)) - VOCAL_OR_FX_PROGRAMS - unparsed):
        name = pretty_midi.program_to_instrument_name(program)
        claims = parse_instruments(f"The instruments are {instrument_phrase(name)}.")
        assert claims.positive == [music.gm_program_family(program)], (program, name, claims.positive)
        assert families_of([name]) == [music.gm_program_family(program)]
    assert music.gm_program_family(110) == "strings" and music.gm_program_family(105) == "ethnic"
    with pytest.raises(ValueError):
        music.gm_program_family(128)


def test_canonical_style_folds_synonyms():
    assert music.canonical_style("Bossa-Nova") == "bossa nova"
    assert music.canonical_style("hip-hop") == "hip hop"
    assert music.canonical_style("Cha Cha Cha") == "cha-cha"
    assert music.canonical_style("Krautrock") == "krautrock"


def _corpus_style_labels():
    """(label, attributes) of every style the renderer can write, with the attributes its
    caption answers read (MMA genre, ABC dance type)."""
    from musilingo.data import mma_styles
    from musilingo.data.render import catalogue, convert_abc

    out = [(s.style, {"style": s.style, "genre": s.genre}) for s in mma_styles.MMA_STYLES]
    m21 = {g["style"] for g in catalogue.M21_GROUPS.values()} | set(catalogue.M21_STYLE_BY_DIR.values())
    abc = {g["style"] for g in catalogue.ABC_GROUPS.values()}
    abc |= {f"{adj} folk song" for _, adj in convert_abc.ESSEN_ORIGINS}
    out += [(s, {"style": s}) for s in sorted(m21 | abc)]
    dances = set(convert_abc.DANCE_QPM) | set(convert_abc.DANCE_ALIASES.values())
    out += [(d, {"style": d, "dance_type": d}) for d in sorted(dances)]
    return out


def test_every_corpus_style_and_its_caption_answers_read_back_as_it():
    """The style score can only be earned for labels the parser knows: every label the renderer
    writes must read back as exactly itself, and every style answer the caption generator writes
    for it must score 1 (a scorer that knew none of the music21, Essen or most MMA labels gave
    "The style is Baroque chorale." 0 against a Baroque chorale)."""
    import random

    from musilingo.data.captions import _a_style
    from musilingo.metrics.attributes import parse_style

    labels = _corpus_style_labels()
    assert len(labels) > 100
    for label, attrs in labels:
        if music.canonical_style(label) in music.UNSCORED_STYLES:
            continue
        claims = parse_style(f"The style is {label}.")
        assert claims.positive == [music.canonical_style(label)], (label, claims.positive)
        for seed in range(12):
            answer = _a_style(attrs, random.Random(seed))
            assert score_attribute("style", answer, attrs) == 1.0, (label, answer)


def test_styles_nest():
    assert music.style_ancestors("baroque chorale") == {"baroque", "chorale", "religious"}
    assert music.style_ancestors("waltz") == frozenset()
    assert music.canonical_style("Rhumba") == "rumba"
    assert music.canonical_style("Irish folk song") == "irish folk tune"
    truth = {"style": "Viennese waltz"}
    assert score_attribute("style", "A Viennese waltz.", truth) == 1.0
    assert score_attribute("style", "A waltz.", truth) == 0.0  # the family, not the style
    assert score_attribute("style", "A Viennese waltz.", {"style": "waltz"}) == 0.0  # another groove
    assert score_attribute("style", "A Baroque chorale.", {"style": "Baroque"}) == 0.0
    assert score_attribute("style", "A son cubano, in the latin family.", {"style": "son cubano"}) == 1.0
    assert score_attribute("style", "A son cubano or a mambo.", {"style": "son cubano"}) == 0.5
    assert score_attribute("style", "Not a jig but a German folk song.", {"style": "German folk song"}) == 1.0
    assert score_attribute("style", "A slide guitar plays a song.", {"style": "song"}) == 0.0
    # MusicCaps genre words stay as they were: "romantic" is a mood there, not a style
    from musilingo.data.musiccaps_text import GENRES

    assert "romantic" not in GENRES and "baroque chorale" not in music.STYLES


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
