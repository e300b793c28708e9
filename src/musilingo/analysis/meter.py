"""Meter: duple / triple / compound and a time-signature guess from beat-level periodicity.

Given the beat period (from :mod:`.tempo`), a handful of features describe how the music groups
beats and splits them:

- beat subdivision: autocorrelation of the onset envelope at 1/2 the beat period against 1/3
  and 2/3 of it (compound meters split the beat in three);
- bar grouping: autocorrelation of onsets and of harmonic change at 2, 3 and 4 beats, and the
  accent contrast of the best phase
  when beats are grouped in 2, 3 or 4, measured on three beat-synchronous accent curves - onset
  strength, bass onset strength, and harmonic change (chroma distance across the beat: chords
  change on downbeats).

Small networks over these features (:data:`NETS`, :mod:`.nets`; fitted on the train split and
chosen on the dev split by ``benchmarks/bench_analysis.py --fit``; docs/analysis.md) give
probabilities for the :data:`CLASSES` 2/2, 2/4, 3/4, 4/2, 4/4 and 6/8; the downbeat phase is the
best phase for the chosen grouping. 2/2 and 4/2 (half-note beats: hymns, reels, Renaissance
polyphony) are told from 2/4 and 4/4 only by how the music moves within the beat, so they are
the least sure.

What it does not: other signatures (3/2 is read as 3/4; 9/8 and 12/8 are named by
``musilingo.music.meter_signature`` but too rare in the corpus to learn and read as 6/8), 5/4
or 7/8, or changes of meter within a clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musilingo.analysis.frontend import FRAME_RATE, Frontend
from musilingo.analysis.nets import Net, fitted_nets, mean_logits
from musilingo.analysis.tempo import Periodicity, salience

CLASSES = ("2/2", "2/4", "3/4", "4/2", "4/4", "6/8")
BEATS_PER_BAR = {"2/2": 2, "2/4": 2, "3/4": 3, "4/2": 4, "4/4": 4, "6/8": 2}  # beats grouped
FEATURES = (
    "sub2", "sub3", "bar2", "bar3", "bar4", "hbar2", "hbar3", "hbar4",
    "stock_half", "stock_two_thirds", "stock_double", "stock_triple", "stock_three_halves",
    "onset_c2", "onset_c3", "onset_c4", "bass_c2", "bass_c3", "bass_c4",
    "harm_c2", "harm_c3", "harm_c4",
)
# Fitted on the train split, chosen on the dev split (benchmarks/bench_analysis.py --fit):
# networks FEATURES -> CLASSES logits, averaged.
# None: the shipped ones (nets.fitted_nets), read on first use; the fit sets its own here.
NETS: tuple[Net, ...] | None = None


@dataclass
class MeterEstimate:
    signature: str
    probabilities: dict[str, float]
    downbeat_phase: int  # index of the first downbeat among the beats


def _beat_values(curve: np.ndarray, beat_frames: np.ndarray, radius: int = 2) -> np.ndarray:
    """Largest value of ``curve`` within +-radius frames of each beat."""
    out = np.zeros(len(beat_frames))
    for i, f in enumerate(beat_frames):
        lo, hi = max(0, f - radius), min(len(curve), f + radius + 1)
        out[i] = curve[lo:hi].max() if hi > lo else 0.0
    return out


def _harmonic_change(chroma: np.ndarray, beat_frames: np.ndarray) -> np.ndarray:
    """Cosine distance between the mean chroma of the beat before and the beat after each beat."""
    out = np.zeros(len(beat_frames))
    for i in range(1, len(beat_frames) - 1):
        a = chroma[:, beat_frames[i - 1]:beat_frames[i]].mean(axis=1)
        b = chroma[:, beat_frames[i]:beat_frames[i + 1]].mean(axis=1)
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        out[i] = 1.0 - float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0
    return out


def _phase_contrast(acc: np.ndarray, m: int) -> tuple[float, int]:
    """Best phase when grouping beats in ``m``: (standardised accent contrast, phase)."""
    if len(acc) < 2 * m:
        return 0.0, 0
    sd = float(acc.std()) or 1.0
    best, phase = -np.inf, 0
    for p in range(m):
        on = acc[p::m]
        off = np.delete(acc, np.arange(p, len(acc), m))
        c = (float(on.mean()) - float(off.mean())) / sd
        if c > best:
            best, phase = c, p
    return best, phase


def meter_features(fe: Frontend, per: Periodicity, bpm: float,
                   beat_times: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """The FEATURES vector for beat tempo ``bpm`` and tracked beats, and the best phase per
    grouping (2, 3, 4)."""
    ac, hac = per.onset, per.harmonic
    s1 = max(salience(ac, bpm), 1e-3)
    h1 = max(salience(hac, bpm), 1e-3)
    feats = {
        "sub2": salience(ac, 2 * bpm) / s1,
        "sub3": max(salience(ac, 3 * bpm), salience(ac, 1.5 * bpm)) / s1,
        "bar2": salience(ac, bpm / 2) / s1,
        "bar3": salience(ac, bpm / 3) / s1,
        "bar4": salience(ac, bpm / 4) / s1,
        "hbar2": salience(hac, bpm / 2) / h1,
        "hbar3": salience(hac, bpm / 3) / h1,
        "hbar4": salience(hac, bpm / 4) / h1,
    }
    # the same ratios around librosa's own pulse, whatever level the tempo model chose
    st = per.stock_bpm
    s0 = max(salience(ac, st), 1e-3)
    for name, r in (("stock_half", 0.5), ("stock_two_thirds", 2 / 3), ("stock_double", 2.0),
                    ("stock_triple", 3.0), ("stock_three_halves", 1.5)):
        feats[name] = salience(ac, st * r) / s0
    frames = np.round(np.asarray(beat_times) * FRAME_RATE).astype(int)
    frames = frames[(frames >= 0) & (frames < fe.onset_env.shape[0])]
    phases: dict[int, int] = {}
    curves = {"onset": _beat_values(fe.onset_env, frames),
              "bass": _beat_values(fe.bass_onset_env, frames),
              "harm": _harmonic_change(fe.chroma, frames)}
    for name, acc in curves.items():
        for m in (2, 3, 4):
            c, p = _phase_contrast(acc, m)
            feats[f"{name}_c{m}"] = c
            if name == "harm":
                phases[m] = p
    return np.array([feats[f] for f in FEATURES], dtype=np.float64), phases


def classify(x: np.ndarray, nets: tuple[Net, ...] | None = None) -> np.ndarray:
    """Class probabilities [len(CLASSES)] for a feature vector (the fitted :data:`NETS` by
    default): the softmax of the networks' mean logits."""
    z = mean_logits(nets or NETS or fitted_nets()["meter"], x)[0]
    z = np.exp(z - z.max())
    return z / z.sum()


def estimate_meter(x: np.ndarray, phases: dict[int, int],
                   nets: tuple[Net, ...] | None = None) -> MeterEstimate:
    """Meter from a :func:`meter_features` vector."""
    p = classify(x, nets)
    sig = CLASSES[int(np.argmax(p))]
    return MeterEstimate(sig, {c: float(v) for c, v in zip(CLASSES, p)},
                         phases.get(BEATS_PER_BAR[sig], 0))


def feel(signature: str) -> str:
    """"compound" (6, 9, 12 or 3/8), "triple" (3 beats) or "duple" (2 or 4 beats); "other"."""
    n, d = (int(v) for v in signature.split("/"))
    if n in (6, 9, 12) or (n == 3 and d == 8):
        return "compound"
    return {2: "duple", 4: "duple", 3: "triple"}.get(n, "other")
