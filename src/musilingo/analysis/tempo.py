"""Tempo: librosa's tempo estimate and beat tracker, with octave and 3:2 errors resolved.

librosa measures the onset-strength autocorrelation (``feature.tempogram``), picks a tempo
(``feature.rhythm.tempo``, a log-normal prior at 120 bpm) and tracks beats
(``beat.beat_track``, Ellis' dynamic programme). What goes wrong is the metrical level: the
estimate is often twice, half, 3/2 or 2/3 of the tempo a listener counts. This module keeps
librosa for all of that and only chooses the level: every candidate ``stock x r`` for r in
:data:`RATIOS` is scored by its autocorrelation salience and a log-normal tempo prior whose
centre and width were chosen on the dev split, with a separate prior for compound meters (whose
beat is the dotted quarter). Beats are then tracked at the chosen tempo.

What it does not: hand-write onset detection or beat tracking, follow tempo changes (one tempo
per clip), or decide the meter (:mod:`.meter`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musilingo.analysis.frontend import FRAME_RATE, HOP, SAMPLE_RATE, Frontend

RATIOS = (1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0)  # metrical levels around librosa's estimate
MIN_BPM, MAX_BPM = 30.0, 300.0
AC_WINDOW = 384  # tempogram window: 384 frames = 8.9 s, lags up to 20 bpm
# Chosen on the dev split (docs/analysis.md): log-normal priors on the beat, per meter kind.
PRIOR_CENTER_BPM = 110.0  # simple meters
PRIOR_OCTAVES = 0.6  # standard deviation of log2(bpm)
COMPOUND_CENTER_BPM = 80.0  # compound meters count the dotted quarter
SALIENCE_WEIGHT = 1.0  # weight of log salience against the log prior


@dataclass
class TempoEstimate:
    bpm: float
    stock_bpm: float
    margin: float  # score of the best candidate minus the best one not within 10 % of it


def autocorrelation(env: np.ndarray) -> np.ndarray:
    """Time-averaged local autocorrelation of an onset envelope: [AC_WINDOW], lag 0 = 1."""
    import librosa

    tg = librosa.feature.tempogram(onset_envelope=env, sr=SAMPLE_RATE, hop_length=HOP,
                                   win_length=AC_WINDOW)
    ac = tg.mean(axis=1)
    return ac / max(float(ac[0]), 1e-9)


def salience(ac: np.ndarray, bpm: float, tolerance: float = 0.03) -> float:
    """Largest autocorrelation within +-``tolerance`` of the lag of ``bpm`` (0 when out of range)."""
    lag = 60.0 * FRAME_RATE / bpm
    lo, hi = int(np.floor(lag * (1 - tolerance))), int(np.ceil(lag * (1 + tolerance)))
    lo, hi = max(lo, 1), min(hi, len(ac) - 1)
    if lo > hi:
        return 0.0
    return float(max(ac[lo:hi + 1].max(), 0.0))


def stock_tempo(fe: Frontend) -> float:
    """librosa's stock global tempo (``feature.rhythm.tempo`` defaults): the baseline."""
    import librosa

    return float(librosa.feature.rhythm.tempo(onset_envelope=fe.onset_env, sr=SAMPLE_RATE,
                                              hop_length=HOP)[0])


def log_prior(bpm: float, compound: bool, center: float | None = None,
              octaves: float = PRIOR_OCTAVES, compound_center: float | None = None) -> float:
    c = (compound_center or COMPOUND_CENTER_BPM) if compound else (center or PRIOR_CENTER_BPM)
    return -0.5 * (np.log2(bpm / c) / octaves) ** 2


def estimate_tempo(fe: Frontend, compound: bool = False, ac: np.ndarray | None = None,
                   stock: float | None = None, center: float | None = None,
                   octaves: float = PRIOR_OCTAVES, compound_center: float | None = None,
                   salience_weight: float = SALIENCE_WEIGHT) -> TempoEstimate:
    """Choose the beat among librosa's estimate and its 1/3, 1/2, 2/3, 3/2, 2, 3 multiples.

    ``compound``: the meter's beats split in three (the beat prior moves to the dotted quarter).
    The keyword arguments after ``stock`` override the dev-chosen constants (for calibration).
    """
    ac = autocorrelation(fe.onset_env) if ac is None else ac
    stock = stock_tempo(fe) if stock is None else stock
    scored = []
    for r in RATIOS:
        bpm = stock * r
        if not MIN_BPM <= bpm <= MAX_BPM:
            continue
        s = salience(ac, bpm)
        score = salience_weight * np.log(s + 1e-3) + log_prior(bpm, compound, center, octaves,
                                                               compound_center)
        scored.append((score, bpm))
    if not scored:
        return TempoEstimate(stock, stock, 0.0)
    scored.sort(reverse=True)
    best_score, best = scored[0]
    rivals = [s for s, b in scored[1:] if abs(b / best - 1) > 0.1]
    margin = best_score - rivals[0] if rivals else 5.0
    return TempoEstimate(float(best), float(stock), float(margin))


def track_beats(fe: Frontend, bpm: float) -> np.ndarray:
    """Beat times in seconds from librosa's beat tracker started at ``bpm``."""
    import librosa

    _, frames = librosa.beat.beat_track(onset_envelope=fe.onset_env, sr=SAMPLE_RATE,
                                        hop_length=HOP, start_bpm=bpm, tightness=400)
    return librosa.frames_to_time(frames, sr=SAMPLE_RATE, hop_length=HOP)
