"""Confidence calibration: raw scores of the estimators -> probability that the fact is right.

Each table maps a raw score (tempo: the log-score margin of the chosen metrical level; meter:
the model's top probability; key: the best profile correlation) to the fraction of dev clips
with about that score whose fact was right. The knots were fitted on the dev split by
``benchmarks/bench_analysis.py --fit`` (equal-count bins, made monotone); between knots the
probability is interpolated linearly, beyond them it is the end value.

What it does not: measure or decide anything.
"""

from __future__ import annotations

import numpy as np

from musilingo.analysis import fitted

# fact -> (raw-score knots ascending, probability at each knot). Fitted on dev.
TABLES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = dict(fitted.CALIBRATION)


def calibrated(fact: str, raw: float) -> float:
    """Probability that ``fact`` is right given its raw score ``raw`` (see :data:`TABLES`)."""
    xs, ps = TABLES[fact]
    return round(float(np.interp(raw, xs, ps)), 3)


def fit_table(raw: np.ndarray, correct: np.ndarray, bins: int = 6) -> tuple[list[float], list[float]]:
    """Knots for :data:`TABLES`: ``bins`` equal-count bins of ``raw`` (their median score and
    accuracy), then pooled adjacent violators so that probability never falls as score rises."""
    raw, correct = np.asarray(raw, float), np.asarray(correct, float)
    order = np.argsort(raw)
    raw, correct = raw[order], correct[order]
    groups = [g for g in np.array_split(np.arange(len(raw)), min(bins, len(raw))) if len(g)]
    xs = [float(np.median(raw[g])) for g in groups]
    ps = [float(correct[g].mean()) for g in groups]
    ws = [len(g) for g in groups]
    i = 0
    while i < len(ps) - 1:  # pool adjacent violators
        if ps[i] > ps[i + 1]:
            w = ws[i] + ws[i + 1]
            ps[i] = (ps[i] * ws[i] + ps[i + 1] * ws[i + 1]) / w
            xs[i] = (xs[i] * ws[i] + xs[i + 1] * ws[i + 1]) / w
            ws[i] = w
            del ps[i + 1], xs[i + 1], ws[i + 1]
            i = max(i - 1, 0)
        else:
            i += 1
    return [round(float(x), 3) for x in xs], [round(float(p), 3) for p in ps]
