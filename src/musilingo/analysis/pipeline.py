"""The analysis entry points: audio -> :class:`~musilingo.analysis.facts.Facts`.

:func:`analyze` measures a clip once (:func:`.frontend.measure`) and :func:`estimate` turns the
measurements into facts: tempo at the simple-meter prior, beats, meter from beat-level
periodicity, the tempo again with the compound prior when the meter is compound, downbeats, key,
loudness, tags and chords, each with its dev-calibrated confidence. :func:`analyze_file` decodes a file
first (any format ``musilingo.audio.load_audio`` reads).

What it does not: print (``command.py``), cache (the benchmark caches frontends), or window long
files (one set of facts per call; callers cut windows with ``musilingo.audio.split_windows``).
"""

from __future__ import annotations

import os
import time

import numpy as np

from musilingo.analysis import calibration, chords, key, loudness, meter, tags, tempo
from musilingo.analysis.facts import Facts, Key, Meter, Tempo
from musilingo.analysis.frontend import SAMPLE_RATE, Frontend, measure

MAX_DURATION_S = 600.0  # analyze_file's default limit: 10 minutes


def rhythm(fe: Frontend) -> tuple[tempo.TempoEstimate, np.ndarray, meter.MeterEstimate]:
    """Tempo, beat times (seconds) and meter: the rhythm part of :func:`estimate` (the chord
    benchmark needs the beats without measuring the notes the key reads)."""
    per = tempo.periodicity(fe)
    t = tempo.estimate_tempo(per, compound=False)
    beats = tempo.track_beats(fe, t.bpm)
    x, phases = meter.meter_features(fe, per, t.bpm, beats)
    m = meter.estimate_meter(x, phases)
    if meter.feel(m.signature) == "compound":
        tc = tempo.estimate_tempo(per, compound=True)
        if abs(tc.bpm / t.bpm - 1) > 0.01:
            t, beats = tc, tempo.track_beats(fe, tc.bpm)
            x, phases = meter.meter_features(fe, per, t.bpm, beats)
            m = meter.MeterEstimate(m.signature, m.probabilities, phases.get(2, 0))
    return t, beats, m


def estimate(fe: Frontend) -> Facts:
    """Facts from measurements (no audio needed: the benchmark re-runs this on cached ones)."""
    t, beats, m = rhythm(fe)
    group = meter.BEATS_PER_BAR[m.signature]
    beat_list = [round(float(b), 3) for b in beats]
    p_sig = m.probabilities[m.signature]
    feel = meter.feel(m.signature)
    p_feel = sum(p for s, p in m.probabilities.items() if meter.feel(s) == feel)
    k = key.estimate_key(key.evidence(fe))
    facts = Facts(
        duration_s=round(fe.duration_s, 3),
        tempo=Tempo(round(t.bpm, 2), calibration.calibrated("tempo", t.margin), beat_list,
                    beat_list[m.downbeat_phase::group], round(t.stock_bpm, 2)),
        meter=Meter(m.signature, feel, group, calibration.calibrated("meter", p_sig),
                    calibration.calibrated("meter_feel", p_feel)),
        key=Key(k.tonic, k.mode, calibration.calibrated("key", k.correlation) if k.tonal else 0.0,
                k.tonal, round(k.correlation, 4), k.profile),
        loudness=loudness.estimate_loudness(fe),
        tags=tags.estimate_tags(fe.tag_probs) if fe.tag_probs is not None else None,
        chords=chords.estimate_chords(fe, beats),
    )
    return facts


def analyze(samples: np.ndarray, sr: int, with_tags: bool = True) -> Facts:
    """Measure and estimate the facts of mono ``samples [S]`` at ``sr`` Hz.

    ``with_tags``: run the musicnn taggers (about half the time). Raises ValueError for audio
    that is too short, silent or non-finite.
    """
    t0 = time.perf_counter()
    notes = key.EVIDENCE in ("notes", "both")
    fe = measure(samples, sr, notes=notes, tags=with_tags)
    facts = estimate(fe)
    facts.seconds = round(time.perf_counter() - t0, 3)
    return facts


def analyze_file(path: str | os.PathLike, with_tags: bool = True,
                 max_duration_s: float | None = MAX_DURATION_S) -> Facts:
    """Decode ``path`` (mono, 22050 Hz) and :func:`analyze` it. Raises
    :class:`~musilingo.errors.AudioError` naming the file for anything wrong with it."""
    import warnings

    from musilingo.audio import SilentAudioWarning, load_audio
    from musilingo.errors import AudioError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SilentAudioWarning)  # reported as an error below
        samples, sr = load_audio(path, SAMPLE_RATE, max_duration_s)
    try:
        return analyze(samples, sr, with_tags=with_tags)
    except ValueError as e:
        raise AudioError(path, str(e)) from None
