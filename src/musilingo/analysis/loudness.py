"""Loudness and dynamics: integrated loudness (ITU-R BS.1770-4), loudness range, peak.

The numbers are pyloudnorm's (measured in :func:`.frontend.measure`); this module only names the
dynamics. The loudness range is the spread of the 3 s short-term loudness (95th minus 10th
percentile), EBU R128's LRA without its relative gate (windows quieter than -70 LUFS are
dropped). What it does not: loudness normalisation (``musilingo.audio.normalize_loudness``).
"""

from __future__ import annotations

import numpy as np

from musilingo.analysis.facts import Loudness
from musilingo.analysis.frontend import Frontend

STEADY_BELOW_LU = 4.0  # range < 4 LU: "steady"
WIDE_FROM_LU = 10.0  # range >= 10 LU: "wide"; in between "varied"


def estimate_loudness(fe: Frontend) -> Loudness:
    st = np.asarray(fe.short_term_lufs, dtype=np.float64)
    st = st[np.isfinite(st) & (st > -70.0)]
    lra = float(np.percentile(st, 95) - np.percentile(st, 10)) if len(st) >= 2 else 0.0
    dyn = "steady" if lra < STEADY_BELOW_LU else ("wide" if lra >= WIDE_FROM_LU else "varied")
    return Loudness(round(float(fe.lufs), 2), round(lra, 2), round(float(fe.peak_dbfs), 2), dyn)
