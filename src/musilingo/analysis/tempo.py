"""Tempo: librosa's tempo estimate and beat tracker, with octave and 3:2 errors resolved.

librosa measures the onset-strength autocorrelation (``feature.tempogram``), picks a tempo
(``feature.rhythm.tempo``, a log-normal prior at 120 bpm) and tracks beats
(``beat.beat_track``, Ellis' dynamic programme). What goes wrong is the metrical level: the
estimate is often twice, half, 3/2 or 2/3 of the tempo a listener counts. This module keeps
librosa for all of that and only chooses the level: every candidate ``stock x r`` for r in
:data:`RATIOS` is scored by a small network (:mod:`.nets`) fitted on the train split of the
rendered corpus and chosen on its dev split (``benchmarks/bench_analysis.py --fit``). Its
features (:data:`FEATURES`): the candidate's salience in the autocorrelation of onsets, of
harmonic change (chords change on beats, rarely between them) and of bass onsets, each also
against the same autocorrelation at twice and half the candidate and against the clip's most
salient candidate; how many onsets fall on one beat (librosa's onset detector); whether it is
librosa's own pick; a log-normal tempo prior, different for compound meters (whose beat is the
dotted quarter); and the pulse clarity (how strongly the onsets repeat at librosa's tempo: high
with drums, low in rubato or polyphonic music). Beats are then tracked at the chosen tempo.

What it does not: hand-write onset detection or beat tracking, follow tempo changes (one tempo
per clip), or decide the meter (:mod:`.meter`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musilingo.analysis.frontend import FRAME_RATE, HOP, SAMPLE_RATE, Frontend
from musilingo.analysis.nets import Net, fitted_nets, mean_logits

RATIOS = (1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0)  # metrical levels around librosa's estimate
MIN_BPM, MAX_BPM = 30.0, 300.0
AC_WINDOW = 384  # tempogram window: 384 frames = 8.9 s, lags up to 20 bpm
REFERENCE_BPM = 100.0  # the prior's features are octaves away from this tempo
FEATURES = ("log_onset", "log_harmonic", "log_bass", "octave", "octave_sq", "compound_octave",
            "compound_octave_sq", "is_stock", "clarity_octave", "clarity_octave_sq",
            "clarity_is_stock", "onset_double_vs", "onset_half_vs", "harmonic_double_vs",
            "harmonic_half_vs", "bass_double_vs", "bass_half_vs", "onsets_per_beat",
            "onsets_per_beat_sq", "onset_vs_best", "harmonic_vs_best", "bass_vs_best",
            "log_onset_rate", "clarity")
# Fitted on the train split, chosen on the dev split (benchmarks/bench_analysis.py --fit;
# docs/analysis.md): networks scoring "this candidate is within 10 % of the true beat", averaged.
# None: the shipped ones (nets.fitted_nets), read on first use; the fit sets its own here.
NETS: tuple[Net, ...] | None = None


@dataclass
class TempoEstimate:
    bpm: float
    stock_bpm: float
    margin: float  # score of the best candidate minus the best one not within 10 % of it


@dataclass
class Periodicity:
    """Autocorrelations of one clip (each [AC_WINDOW], lag 0 = 1), librosa's stock tempo and
    the clip's onsets per second (librosa's onset detector)."""

    onset: np.ndarray
    harmonic: np.ndarray
    bass: np.ndarray
    stock_bpm: float
    onset_rate: float


def autocorrelation(env: np.ndarray) -> np.ndarray:
    """Time-averaged local autocorrelation of an onset envelope: [AC_WINDOW], lag 0 = 1."""
    import librosa

    tg = librosa.feature.tempogram(onset_envelope=env, sr=SAMPLE_RATE, hop_length=HOP,
                                   win_length=AC_WINDOW)
    ac = tg.mean(axis=1)
    return ac / max(float(ac[0]), 1e-9)


def harmonic_novelty(chroma: np.ndarray) -> np.ndarray:
    """[T] half-wave rectified change of the L1-normalised chroma (chords change on beats)."""
    c = chroma / np.maximum(chroma.sum(axis=0, keepdims=True), 1e-9)
    d = np.maximum(np.diff(c, axis=1, prepend=c[:, :1]), 0.0).sum(axis=0)
    return d.astype(np.float32)


def periodicity(fe: Frontend) -> Periodicity:
    """The three autocorrelations, the stock tempo and the onset rate of a clip."""
    return Periodicity(autocorrelation(fe.onset_env), autocorrelation(harmonic_novelty(fe.chroma)),
                       autocorrelation(fe.bass_onset_env), stock_tempo(fe), onset_rate(fe))


def onset_rate(fe: Frontend) -> float:
    """Onsets per second (librosa's peak picking on the onset envelope; at least one)."""
    import librosa

    onsets = librosa.onset.onset_detect(onset_envelope=fe.onset_env, sr=SAMPLE_RATE,
                                        hop_length=HOP, units="frames")
    return max(len(onsets), 1) / max(fe.duration_s, 1e-3)


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


def candidate_features(per: Periodicity, bpm: float, compound: bool) -> np.ndarray:
    """The FEATURES vector of beat candidate ``bpm``."""
    o = float(np.log2(bpm / REFERENCE_BPM))
    c = 1.0 if compound else 0.0
    stock = 1.0 if abs(bpm / per.stock_bpm - 1) < 1e-6 else 0.0
    clarity = salience(per.onset, per.stock_bpm)  # pulse clarity: high for drums, steady beats
    curves = (per.onset, per.harmonic, per.bass)

    def log_sal(ac: np.ndarray, b: float) -> float:
        return float(np.log(salience(ac, b) + 1e-3))

    own = [log_sal(ac, bpm) for ac in curves]
    levels = []
    for ac, s in zip(curves, own):
        levels += [log_sal(ac, 2 * bpm) - s, log_sal(ac, bpm / 2) - s]
    per_beat = float(np.log2(per.onset_rate * 60.0 / bpm))
    cands = candidates(per)
    vs_best = [s - max(log_sal(ac, b) for b in cands) for ac, s in zip(curves, own)]
    return np.array(own + [o, o * o, c * o, c * o * o, stock, clarity * o, clarity * o * o,
                           clarity * stock] + levels + [per_beat, per_beat * per_beat]
                    + vs_best + [float(np.log(per.onset_rate)), clarity])


def candidates(per: Periodicity) -> list[float]:
    """librosa's estimate and its metrical relatives within MIN_BPM..MAX_BPM."""
    return [per.stock_bpm * r for r in RATIOS if MIN_BPM <= per.stock_bpm * r <= MAX_BPM] \
        or [per.stock_bpm]


def estimate_tempo(per: Periodicity, compound: bool = False,
                   nets: tuple[Net, ...] | None = None) -> TempoEstimate:
    """Choose the beat among librosa's estimate and its 1/3, 1/2, 2/3, 3/2, 2, 3 multiples by
    the fitted candidate networks (:data:`NETS`). ``compound``: the meter splits beats in three
    (the beat is then the dotted quarter)."""
    cands = candidates(per)
    x = np.stack([candidate_features(per, b, compound) for b in cands])
    scores = mean_logits(nets or NETS or fitted_nets()["tempo"], x)[:, 0]
    scored = sorted(zip(scores.tolist(), cands), reverse=True)
    best_score, best = scored[0]
    rivals = [s for s, b in scored[1:] if abs(b / best - 1) > 0.1]
    margin = best_score - rivals[0] if rivals else 10.0
    return TempoEstimate(float(best), float(per.stock_bpm), float(margin))


def track_beats(fe: Frontend, bpm: float) -> np.ndarray:
    """Beat times in seconds from librosa's beat tracker started at ``bpm``."""
    import librosa

    _, frames = librosa.beat.beat_track(onset_envelope=fe.onset_env, sr=SAMPLE_RATE,
                                        hop_length=HOP, start_bpm=bpm, tightness=400)
    return librosa.frames_to_time(frames, sr=SAMPLE_RATE, hop_length=HOP)
