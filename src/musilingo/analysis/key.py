"""Key: tonic and mode by correlating pitch-class evidence with a key profile, bass weighted.

Evidence: the time-averaged constant-Q energy per semitone (:class:`.frontend.Frontend`
``cqt_mean``, C1..B7) and, when Basic Pitch ran, its note posteriors per piano key and how often
each key was the lowest note sounding. Semitones are folded to 12 pitch classes with extra
weight on the bass register (the bass states the tonic and the harmony's roots). The folded
vector is correlated (Pearson) with the 24 rotations of a key profile from
``musilingo.music.KEY_PROFILES`` (Krumhansl-Kessler, Temperley-Kostka-Payne,
Albrecht-Shanahan); the best rotation is the key. Which evidence, which profile and which bass
weight are chosen on the dev split (docs/analysis.md); :data:`TONAL_MIN_CORRELATION` says when
the music is not tonal enough to claim a key (noise, unpitched percussion, atonal music).

What it does not: modulations (one key per clip), modes other than major and minor, tuning
other than A = 440 Hz +- 1/6 semitone (each semitone sums three constant-Q bins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musilingo.analysis import fitted
from musilingo.analysis.frontend import CQT_FMIN_MIDI, Frontend
from musilingo.music import KEY_PROFILES, MODES, key_profile, tonic_name

# Chosen on the dev split (docs/analysis.md).
PROFILE = fitted.KEY_PROFILE
EVIDENCE = fitted.KEY_EVIDENCE  # "cqt" (constant-Q energy), "notes" (Basic Pitch), "both" (sum)
BASS_SPLIT_MIDI = fitted.KEY_BASS_SPLIT_MIDI  # semitones below count as bass
BASS_WEIGHT = fitted.KEY_BASS_WEIGHT  # extra weight of the bass register (0 = none)
LOWEST_WEIGHT = fitted.KEY_LOWEST_WEIGHT  # weight of Basic Pitch's lowest-note counts
TONAL_MIN_CORRELATION = fitted.KEY_TONAL_MIN_CORRELATION  # below: "no clear key"
MIN_PC_CONTRAST = fitted.KEY_MIN_PC_CONTRAST  # std / mean of the evidence below this: flat
BASIC_PITCH_LOWEST_MIDI = 21  # A0: note bin 0


@dataclass
class KeyEstimate:
    tonic_pc: int
    mode: str
    correlation: float
    margin: float  # best minus second-best correlation
    tonal: bool
    contrast: float  # std / mean of the evidence: near 0 for noise
    profile: str

    @property
    def tonic(self) -> str:
        return tonic_name(self.tonic_pc, self.mode)


def fold(per_semitone: np.ndarray, lowest_midi: int, bass_split: int | None = None,
         bass_weight: float | None = None) -> np.ndarray:
    """[n] energy per semitone starting at ``lowest_midi`` -> [12] pitch-class vector C..B, the
    semitones below ``bass_split`` weighted ``1 + bass_weight`` (defaults: the dev-chosen
    :data:`BASS_SPLIT_MIDI`, :data:`BASS_WEIGHT`)."""
    bass_split = BASS_SPLIT_MIDI if bass_split is None else bass_split
    bass_weight = BASS_WEIGHT if bass_weight is None else bass_weight
    v = np.asarray(per_semitone, dtype=np.float64)
    midi = lowest_midi + np.arange(len(v))
    w = np.where(midi < bass_split, 1.0 + bass_weight, 1.0)
    out = np.zeros(12)
    np.add.at(out, midi % 12, v * w)
    return out


def evidence(fe: Frontend, kind: str | None = None, bass_weight: float | None = None,
             bass_split: int | None = None, lowest_weight: float | None = None) -> np.ndarray:
    """The [12] pitch-class vector the key is read from (see module docstring); None arguments
    take the dev-chosen module constants."""
    kind = EVIDENCE if kind is None else kind
    lowest_weight = LOWEST_WEIGHT if lowest_weight is None else lowest_weight
    parts = []
    if kind in ("cqt", "both"):
        c = fold(fe.cqt_mean, CQT_FMIN_MIDI, bass_split, bass_weight)
        parts.append(c / max(c.sum(), 1e-9))
    if kind in ("notes", "both"):
        if fe.note_mean is None:
            raise ValueError("key evidence 'notes' needs Basic Pitch (measure with notes=True)")
        n = fold(fe.note_mean, BASIC_PITCH_LOWEST_MIDI, bass_split, bass_weight)
        n = n / max(n.sum(), 1e-9)
        lo = fold(fe.note_lowest, BASIC_PITCH_LOWEST_MIDI, bass_split, 0.0)
        n = n + lowest_weight * lo / max(lo.sum(), 1e-9)
        parts.append(n / max(n.sum(), 1e-9))
    if not parts:
        raise ValueError(f"unknown key evidence {kind!r}")
    return np.sum(parts, axis=0)


def correlations(pcs: np.ndarray, profile: str | None = None) -> np.ndarray:
    """[2, 12] Pearson correlation of ``pcs`` with each (mode, tonic) rotation of ``profile``."""
    profile = PROFILE if profile is None else profile
    if profile not in KEY_PROFILES:
        raise ValueError(f"unknown key profile {profile!r}; choose from {sorted(KEY_PROFILES)}")
    x = np.asarray(pcs, dtype=np.float64)
    x = x - x.mean()
    nx = np.linalg.norm(x)
    out = np.zeros((2, 12))
    if nx < 1e-12:
        return out
    for m, mode in enumerate(MODES):
        for t in range(12):
            p = np.asarray(key_profile(profile, mode, t))
            p = p - p.mean()
            out[m, t] = float(x @ p) / (nx * np.linalg.norm(p))
    return out


def estimate_key(pcs: np.ndarray, profile: str | None = None,
                 min_correlation: float | None = None,
                 min_contrast: float | None = None) -> KeyEstimate:
    """The best key for pitch-class vector ``pcs [12]``; tonal when the correlation reaches
    ``min_correlation`` and the evidence is not flat (``min_contrast``); defaults: the dev-chosen
    :data:`TONAL_MIN_CORRELATION`, :data:`MIN_PC_CONTRAST`."""
    profile = PROFILE if profile is None else profile
    min_correlation = TONAL_MIN_CORRELATION if min_correlation is None else min_correlation
    min_contrast = MIN_PC_CONTRAST if min_contrast is None else min_contrast
    x = np.asarray(pcs, dtype=np.float64)
    contrast = float(x.std() / x.mean()) if x.mean() > 0 else 0.0
    r = correlations(pcs, profile)
    order = np.argsort(r.ravel())[::-1]
    best, second = r.ravel()[order[0]], r.ravel()[order[1]]
    m, t = divmod(int(order[0]), 12)
    return KeyEstimate(t, MODES[m], float(best), float(best - second),
                       bool(best >= min_correlation and contrast >= min_contrast), contrast,
                       profile)


def baseline_key(fe: Frontend) -> KeyEstimate:
    """The textbook baseline: Krumhansl-Kessler on the plain time-averaged CQT chroma, no bass
    weighting."""
    return estimate_key(fold(fe.cqt_mean, CQT_FMIN_MIDI, bass_weight=0.0), "krumhansl", -1.0)
