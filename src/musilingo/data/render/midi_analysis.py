"""Truth read back from the written MIDI: tempo, meter and instruments of a clip's time window.

What it does: the mean tempo over a window (and whether it varies), the meter at a time, beats
per minute for a meter's beat (:func:`beat_bpm`), and which instruments, families and parts sound
in the window (with the lead instrument where the converter named one).

What it does not: change MIDI (:mod:`.midi_edit`) or say the key (that comes from the symbolic
source, through the converters).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musilingo.music import gm_program_family


def _program_name(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_name(int(program))


def families_of(instruments: list[str]) -> list[str]:
    """The instrument families of a clip's GM instrument names (``attributes["instruments"]``),
    in order, once each: what :func:`_instrument_summary` writes as ``instrument_families``."""
    import pretty_midi

    return list(dict.fromkeys(gm_program_family(pretty_midi.instrument_name_to_program(n))
                              for n in instruments))


def _tempo_in_window(pm, t0: float, t1: float) -> tuple[float, bool]:
    times, qpms = pm.get_tempo_changes()
    edges = list(times) + [max(t1, times[-1]) + 1.0]
    total, acc = 0.0, 0.0
    seen = []
    for k, q in enumerate(qpms):
        a, b = max(edges[k], t0), min(edges[k + 1], t1)
        if b > a:
            acc += q * (b - a)
            total += b - a
            seen.append(q)
    if total <= 0:
        q = float(qpms[np.searchsorted(times, t0, side="right") - 1])
        return float(q), False
    mean = float(acc / total)
    varies = bool(seen) and (max(seen) - min(seen)) > 0.05 * mean
    return mean, varies


def _meter_at(pm, t: float) -> tuple[int, int] | None:
    ts = [x for x in pm.time_signature_changes if x.time <= t + 1e-6]
    if not ts:
        ts = pm.time_signature_changes[:1]
    if not ts:
        return None
    return int(ts[-1].numerator), int(ts[-1].denominator)


def _chord_timeline(pm, progression: list[str], t0: float, t1: float) -> list[list]:
    """``[[start_s, end_s, chord], ...]`` on the clip's clock (0 = ``t0``) for a progression of
    one chord per bar (bar k starts at the MIDI's k-th downbeat: pretty_midi reads them from the
    file's own tempo and time-signature events). Adjacent bars with the same chord are one
    segment; bars past the progression's end are left out."""
    downbeats = [float(t) for t in pm.get_downbeats()]
    bar_ends = downbeats[1:] + [float(pm.get_end_time())]
    out: list[list] = []
    for chord, start, end in zip(progression, downbeats, bar_ends):
        s, e = max(start, t0), min(end, t1)
        if e - s <= 1e-3:
            continue
        s, e = round(s - t0, 3), round(e - t0, 3)
        if out and out[-1][2] == chord and abs(out[-1][1] - s) < 1e-3:
            out[-1][1] = e
        else:
            out.append([s, e, chord])
    return out


def beat_bpm(qpm: float, meter: tuple[int, int] | None) -> float:
    """Beats per minute for the meter's beat: the denominator note in simple meters, the dotted
    note in compound ones (3/8, 6/8, 9/8, 12/8: dotted quarter). ``qpm`` is quarter notes/minute."""
    if meter is None:
        return qpm
    num, den = meter
    per_quarter = den / 4.0  # denominator notes per quarter
    if num in (3, 6, 9, 12) and den >= 8:
        return qpm * per_quarter / 3.0
    return qpm * per_quarter


def _instrument_summary(pm, t0: float, t1: float, lead_index: int | None) -> dict[str, Any]:
    names, fams, counts = [], [], []
    drums = False
    lead = None
    n_parts = 0
    for j, inst in enumerate(pm.instruments):
        n = sum(1 for x in inst.notes if x.start < t1 and x.end > t0)
        if n == 0:
            continue
        if inst.is_drum:
            drums = True
            continue
        n_parts += 1
        name = _program_name(inst.program)
        if lead_index is not None and j == lead_index:
            lead = name
        if name not in names:
            names.append(name)
            fams.append(gm_program_family(inst.program))
            counts.append(n)
    families = list(dict.fromkeys(fams))
    out = {"instruments": names, "instrument_families": families, "drums": drums,
           "num_parts": n_parts}
    if lead:
        out["lead_instrument"] = lead
    return out
