"""MMA groove -> MIDI (through ``mma``): one clip's tempo, key, chord progression and voices.

What it does: draws tempo, mode and tonic for an MMA style, generates a chord progression long
enough for the clip (:mod:`musilingo.data.mma_styles`), runs ``mma`` under the clip's deadline
and re-voices parts by role half the time (always replacing vocal-like and sound-effect
patches); makes the MIDI's time signature agree with the bars MMA laid (:func:`_agree_with_bar`);
returns the pretty_midi object and the clip's metadata.

What it does not: render audio, cut the clip or read tempo/meter/instruments back
(:mod:`.clip`, :mod:`.midi_analysis`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from musilingo.data import mma_styles
from musilingo.data.render.instruments import GM_BASS, GM_COMP, VOCAL_OR_FX_PROGRAMS
from musilingo.data.render.midi_edit import _drop_empty
from musilingo.data.render.plan import ClipSpec
from musilingo.data.render.timeouts import _run
from musilingo.music import tonic_name

MMA_BIN = "mma"


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
    pm = _agree_with_bar(pretty_midi.PrettyMIDI(str(midi_path)), beats, spec.style_file)
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
            "chords": chords[:8], "lead_index": None,
            "chord_progression": [mma_styles.harte_name(c) for c in chords]}  # one per bar
    return pm, meta


def _agree_with_bar(pm, beats: int, style_file: str = ""):
    """The MIDI with a time signature that fits the bars MMA laid.

    MMA lays bars of the style's ``Time`` N beats, one MIDI quarter note each, and only labels
    them with its ``Timesig``. Two stdlib styles label a bar that does not fit: vienesewaltz
    calls its 3-beat bars 4/4, and 68march writes its dotted-quarter beat as a MIDI quarter, so
    its 2-beat bars last 2 quarters where 6/8 says 3. Meter, beat tempo, downbeats and chord
    truth are all read from this MIDI, so a compound label whose dotted beats fill the bar
    (6/8, 9/8, 12/8 for N = 2, 3, 4) keeps its signature and the tempo is restated in the
    label's quarter notes (x 1.5, note times unchanged); any other misfit becomes N/4.
    """
    import pretty_midi

    sigs = pm.time_signature_changes
    if not sigs or all(abs(t.numerator * 4 / t.denominator - beats) < 1e-6 for t in sigs):
        return pm
    first = sigs[0]
    if not (first.denominator == 8 and first.numerator in (6, 9, 12)
            and first.numerator // 3 == beats):
        pm.time_signature_changes = [pretty_midi.TimeSignature(beats, 4, t.time) for t in sigs]
        return pm
    _, qpms = pm.get_tempo_changes()
    if len(qpms) != 1:
        raise ValueError(f"MMA style {style_file!r}: {first.numerator}/{first.denominator} "
                         f"bars of {beats} beats with {len(qpms)} tempi cannot be restated")
    # pretty_midi keeps note times in seconds: a new file at the restated tempo, same notes
    out = pretty_midi.PrettyMIDI(resolution=pm.resolution,
                                 initial_tempo=float(qpms[0]) * first.numerator / 2 / beats)
    out.instruments = pm.instruments
    out.key_signature_changes = pm.key_signature_changes
    out.time_signature_changes = [pretty_midi.TimeSignature(t.numerator, t.denominator, t.time)
                                  for t in sigs]
    out.lyrics, out.text_events = pm.lyrics, pm.text_events
    return out
