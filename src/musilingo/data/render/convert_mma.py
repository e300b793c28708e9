"""MMA groove -> MIDI (through ``mma``): one clip's tempo, key, chord progression and voices.

What it does: draws tempo, mode and tonic for an MMA style, generates a chord progression long
enough for the clip (:mod:`musilingo.data.mma_styles`), runs ``mma`` under the clip's deadline
and re-voices parts by role half the time (always replacing vocal-like and sound-effect
patches); returns the pretty_midi object and the clip's metadata.

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
    pm = pretty_midi.PrettyMIDI(str(midi_path))
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
