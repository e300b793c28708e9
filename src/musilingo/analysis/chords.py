"""Chords: a major or minor triad (optionally a seventh chord), or no chord, per stretch of a clip.

What it does: the textbook template recogniser. The frontend's constant-Q chroma is averaged per
beat (``librosa.util.sync`` on the tracked beats, or left per frame), each column is scored
against the 24 major / minor triads (cosine similarity with templates that hold each chord
note's first harmonics, as an instrument sounds them, not the bare pitch classes) plus a
bass term (the bass chroma's share at the chord's root), the scores become posteriors (a
softmax), ``librosa.sequence.viterbi_discriminative`` smooths them with a self-loop transition,
and runs of one chord become :class:`~musilingo.analysis.facts.ChordSegment` s. The settings in
:data:`PARAMS` were chosen on the dev split's MMA clips, whose chord progression is known, by
``benchmarks/bench_chords.py`` (results in ``benchmarks/results/chords-valid.json``).

Why the scoring is written here: no chord recogniser in a well-kept library installs offline on
Python 3.11 (madmom's last release does not build; Chordino needs a Vamp host; essentia is
AGPL-licensed). librosa does the beat synchronisation and the Viterbi decoding; mir_eval scores
the result in the benchmark.

What it does not: name sevenths by default (``vocabulary="sevenths"`` adds the dominant, major
and minor sevenths, but reads sevenths into triads under a melody: docs/analysis.md),
inversions or other qualities, or calibrate its confidence (a segment's confidence is its mean
posterior).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from musilingo.analysis.facts import Chords, ChordSegment
from musilingo.analysis.frontend import HOP, SAMPLE_RATE, Frontend
from musilingo.music import CHORD_QUALITIES, NO_CHORD, TRIADS, chord_label

VOCABULARIES = ("majmin", "sevenths")
HARMONIC_DECAY = 0.6  # weight ratio of successive partials in the harmonic templates


@dataclass(frozen=True)
class ChordParams:
    """The recogniser's settings; the defaults are the ones chosen on dev (the best ``majmin``
    of ``benchmarks/bench_chords.py --grid``; the grid is in results/chords-valid.json)."""

    vocabulary: str = "majmin"
    """"majmin": the 24 major and minor triads; "sevenths": also the dominant, major and minor
    sevenths (60 chords)"""
    harmonics: int = 6
    """partials per chord note in the templates (1: the pitch classes alone; more: each note's
    harmonics too, the k-th weighted HARMONIC_DECAY ** (k - 1), as an instrument sounds them)"""
    per_beat: bool = True
    """average the chroma per tracked beat (else decide per frame)"""
    bass_weight: float = 0.25
    """weight of the bass chroma at the root, added to the cosine score"""
    sharpness: float = 40.0
    """softmax inverse temperature turning scores into posteriors"""
    self_prob: float = 0.9
    """Viterbi probability of staying on the same chord from one column to the next"""
    no_chord_score: float = 0.3
    """the score of "no chord" (N), against the chords' cosine scores"""
    min_energy: float = 0.1
    """columns with less chroma energy than this share of the clip's loudest are N"""


PARAMS = ChordParams()  # dev majmin 0.890 on the 107 MMA clips of the valid split


def _templates(vocabulary: str, harmonics: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """[C, 12] unit-norm chord templates (24 triads, or 60 chords for "sevenths"), [C] root
    pitch classes, and the C + 1 labels (N last)."""
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"chord vocabulary must be one of {VOCABULARIES}, got {vocabulary!r}")
    rows, roots, labels = [], [], []
    for quality, intervals in CHORD_QUALITIES.items():
        if quality not in TRIADS and vocabulary == "majmin":
            continue
        for root in range(12):
            t = np.zeros(12)
            for i in intervals:
                for k in range(1, harmonics + 1):  # the k-th partial sits 12 log2(k) semitones up
                    t[(root + i + round(12 * np.log2(k))) % 12] += HARMONIC_DECAY ** (k - 1)
            rows.append(t / np.linalg.norm(t))
            roots.append(root)
            labels.append(chord_label(root, quality))
    return np.array(rows), np.array(roots), labels + [NO_CHORD]


def estimate_chords(fe: Frontend, beats: list[float] | np.ndarray,
                    params: ChordParams = PARAMS) -> Chords:
    """The chord segments of a clip from its measurements and beat times (seconds)."""
    import librosa

    chroma = np.asarray(fe.chroma, dtype=np.float64)
    n_frames = chroma.shape[1]
    if n_frames == 0:
        return Chords([])
    if params.per_beat and len(beats) >= 2:
        frames = librosa.time_to_frames(np.asarray(beats, float), sr=SAMPLE_RATE, hop_length=HOP)
        bounds = librosa.util.fix_frames(np.unique(np.clip(frames, 0, n_frames)), x_min=0,
                                         x_max=n_frames)
    else:
        bounds = np.arange(n_frames + 1)
    bounds = bounds[np.concatenate([[True], np.diff(bounds) > 0])]  # no empty columns

    def per_column(x: np.ndarray) -> np.ndarray:
        return np.stack([x[:, a:b].mean(axis=1) for a, b in pairwise(bounds)], axis=1)

    cols = per_column(chroma)  # [12, N]
    energy = cols.sum(axis=0)
    cols = cols - cols.min(axis=0, keepdims=True)  # the broadband floor every pitch class shares
    unit = cols / np.maximum(np.linalg.norm(cols, axis=0, keepdims=True), 1e-9)
    templates, roots, labels = _templates(params.vocabulary, params.harmonics)
    scores = templates @ unit  # [C, N] cosine
    if params.bass_weight and fe.bass_chroma is not None:
        bass = per_column(np.asarray(fe.bass_chroma, dtype=np.float64))
        bass = bass - bass.min(axis=0, keepdims=True)
        bass = bass / np.maximum(bass.sum(axis=0, keepdims=True), 1e-9)
        scores = scores + params.bass_weight * bass[roots]
    quiet = energy < params.min_energy * max(float(energy.max()), 1e-9)
    scores[:, quiet] = -1.0
    scores = np.vstack([scores, np.full((1, scores.shape[1]), params.no_chord_score)])
    z = params.sharpness * scores
    post = np.exp(z - z.max(axis=0, keepdims=True))
    post /= post.sum(axis=0, keepdims=True)
    transition = librosa.sequence.transition_loop(len(labels), params.self_prob)
    path = librosa.sequence.viterbi_discriminative(post, transition)
    # column boundaries in seconds, ending at the clip's end (the last frame overhangs it)
    times = np.round(np.minimum(librosa.frames_to_time(bounds, sr=SAMPLE_RATE, hop_length=HOP),
                                fe.duration_s), 3)
    times[-1] = round(fe.duration_s, 3)
    segments: list[ChordSegment] = []
    start = 0
    for i in range(1, len(path) + 1):
        if i == len(path) or path[i] != path[start]:
            state = int(path[start])
            if times[i] > times[start]:  # a column squeezed to nothing at the end is dropped
                segments.append(ChordSegment(float(times[start]), float(times[i]), labels[state],
                                             round(float(post[state, start:i].mean()), 4)))
            start = i
    if segments:  # the last segment ends at the clip's end even when its column was dropped
        segments[-1].end = float(times[-1])
    return Chords(segments)
