"""Edits of a pretty_midi object shared by the converters and the clip: transposing, dropping
empty parts, looping a short tune, cutting out a time window.

What it does not: read truth attributes from MIDI (:mod:`.midi_analysis`), choose instruments
(:mod:`.instruments`) or write files.
"""

from __future__ import annotations

import math

import numpy as np

MAX_TRANSPOSE = 4  # semitones either way; keeps parts in their instruments' ranges
MAX_LOOP_COPIES = 4  # a short tune is repeated at most this many extra times


def _transpose_pm(pm, semitones: int) -> None:
    import pretty_midi

    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for n in inst.notes:
            n.pitch = int(min(max(n.pitch + semitones, 0), 127))
    pm.key_signature_changes = [
        pretty_midi.KeySignature(12 * (k.key_number // 12) + (k.key_number % 12 + semitones) % 12,
                                 k.time)
        for k in pm.key_signature_changes]


def _drop_empty(pm) -> None:
    pm.instruments = [i for i in pm.instruments if i.notes]


def _loop_to_length(pm, seconds: float, max_copies: int = MAX_LOOP_COPIES) -> int:
    """Repeat a short tune (as a player repeats a verse) until its notes last ``seconds``.

    Only for a constant tempo and meter; each repeat starts on the next bar line. Returns the
    number of copies added (0 when nothing was done)."""
    _, qpms = pm.get_tempo_changes()
    notes = [n for i in pm.instruments for n in i.notes]
    if len(qpms) != 1 or len(pm.time_signature_changes) > 1 or not notes:
        return 0
    first, end = min(n.start for n in notes), max(n.end for n in notes)
    if end - first >= seconds:
        return 0
    ts = pm.time_signature_changes[0] if pm.time_signature_changes else None
    quarters = ts.numerator * 4.0 / ts.denominator if ts else 4.0
    bar = quarters * 60.0 / float(qpms[0])
    period = math.ceil((end - 1e-6) / bar) * bar
    copies = min(int(math.ceil((seconds - (end - first)) / period)), max_copies)
    import pretty_midi

    for inst in pm.instruments:
        orig = list(inst.notes)
        for k in range(1, copies + 1):
            inst.notes += [pretty_midi.Note(n.velocity, n.pitch, n.start + k * period,
                                            n.end + k * period) for n in orig]
    return copies


def _window_midi(pm, w0: float, w1: float):
    """A copy of ``pm`` holding only [w0, w1], shifted to start at 0 (notes sounding across the
    edges are cut at them; tempo, meter and controllers are carried over)."""
    import copy

    win = copy.deepcopy(pm)
    for inst in win.instruments:
        notes = []
        for n in inst.notes:
            if n.end <= w0 or n.start >= w1:
                continue
            n.start, n.end = max(n.start, w0), min(n.end, w1)
            if n.end - n.start > 1e-3:
                notes.append(n)
        inst.notes = notes
    win.adjust_times(np.array([w0, w1]), np.array([0.0, w1 - w0]))
    return win
