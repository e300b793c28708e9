"""music21 corpus score -> MIDI: one clip's tempo, instruments, transposition and key truth.

What it does: parses a corpus score, claims a major/minor key only where analysis, key signature
and final bass note agree (never for modal repertoires), strips repeats, keeps a window of
measures long enough for the clip, sets the drawn tempo, writes MIDI through music21, assigns
programs and transposes; returns the pretty_midi object and the clip's metadata.

What it does not: render audio, cut the clip or read tempo/meter/instruments back
(:mod:`.clip`, :mod:`.midi_analysis`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from musilingo.data.render.catalogue import (
    COMPOSER_BY_DIR,
    M21_GROUPS,
    M21_STYLE_BY_DIR,
    MODAL_DIRS,
)
from musilingo.data.render.instruments import _choose_programs
from musilingo.data.render.midi_edit import MAX_TRANSPOSE, _drop_empty, _transpose_pm
from musilingo.data.render.plan import ClipSpec
from musilingo.data.render.timeouts import _ClipTimeout


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
