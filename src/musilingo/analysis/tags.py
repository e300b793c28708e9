"""Real-world tags from both heads of the shipped musicnn taggers, and the vocals fact.

musicnn's MagnaTagATune head (``MTT_musicnn``: instruments, voice, genre and mood words) and its
Million Song Dataset head (``MSD_musicnn``: genres, moods, decades) give 50 clip-level
probabilities each (:func:`musilingo.encoders.musicnn.tag_probabilities`). A tag is reported when
its probability reaches its threshold in :data:`THRESHOLDS`. How each threshold was chosen is in
docs/analysis.md; in short, three kinds:

- calibrated: tags the rendered corpus has truth for (instruments, drums, "classical", genres of
  the MMA grooves): the threshold that maximises F1 on the dev split;
- false-positive-bounded: tags the corpus is known NOT to have (voices, metal, hip-hop ...):
  the dev split's 99th percentile (at most 1 % of instrumental dev clips get the tag), at least
  :data:`DEFAULT_THRESHOLD`;
- uncalibrated (moods, decades): :data:`DEFAULT_THRESHOLD`, the sigmoid's midpoint.

Vocals present / absent: the largest probability among the MTT voice tags
(:data:`VOICE_TAGS`) against :data:`VOCALS_THRESHOLD`. The corpus has no voices, so only the
false-positive side could be set on data (see docs/analysis.md).

What it does not: run the network (``encoders/musicnn.py``), or name GM instrument families.
"""

from __future__ import annotations

import numpy as np

from musilingo.analysis import fitted
from musilingo.analysis.facts import NO_VOICE_TAGS, VOICE_TAGS, Tag, Tags

HEADS = {"MTT": "MTT_musicnn", "MSD": "MSD_musicnn"}
VOCAL_EVIDENCE_TAGS = tuple(sorted(VOICE_TAGS - set(NO_VOICE_TAGS) - {
    "male vocalists", "female vocalists", "female vocalist"}))  # the MTT ones
DEFAULT_THRESHOLD = 0.5
# Chosen on the dev split by benchmarks/bench_analysis.py --fit (docs/analysis.md).
# "MTT:piano" -> threshold; a tag not listed uses DEFAULT_THRESHOLD.
THRESHOLDS: dict[str, float] = dict(fitted.TAG_THRESHOLDS)
VOCALS_THRESHOLD = fitted.VOCALS_THRESHOLD


def tag_names(source: str) -> tuple[str, ...]:
    from musilingo.encoders.musicnn import tag_names as names

    return names(HEADS[source])


def vocal_probability(mtt_probs: np.ndarray) -> float:
    """Largest MTT probability among the voice tags ("vocal", "singing", "female" ...)."""
    names = tag_names("MTT")
    return float(max(mtt_probs[names.index(t)] for t in VOCAL_EVIDENCE_TAGS))


def threshold(source: str, name: str) -> float:
    return THRESHOLDS.get(f"{source}:{name}", DEFAULT_THRESHOLD)


def estimate_tags(tag_probs: dict[str, np.ndarray], thresholds: dict[str, float] | None = None,
                  vocals_threshold: float | None = None) -> Tags:
    """Tags over threshold and the vocals fact from ``{"MTT_musicnn": [50], "MSD_musicnn": [50]}``."""
    th = THRESHOLDS if thresholds is None else thresholds
    vth = VOCALS_THRESHOLD if vocals_threshold is None else vocals_threshold
    found = []
    for source, variant in HEADS.items():
        probs = np.asarray(tag_probs[variant])
        for name, p in zip(tag_names(source), probs):
            t = th.get(f"{source}:{name}", DEFAULT_THRESHOLD)
            if p >= t and name.lower() not in VOICE_TAGS:
                found.append(Tag(name.lower(), source, round(float(p), 4), round(t, 4)))
    found.sort(key=lambda g: (-g.probability / g.threshold, g.source, g.name))
    pv = vocal_probability(np.asarray(tag_probs[HEADS["MTT"]]))
    vocals = pv >= vth
    # Distance from the threshold on a log-odds scale, squashed to 0.5..1 (not calibrated).
    logit = lambda p: np.log(max(p, 1e-6) / max(1 - p, 1e-6))  # noqa: E731
    conf = 1.0 / (1.0 + np.exp(-abs(logit(pv) - logit(vth))))
    return Tags(found, bool(vocals), round(float(conf), 4), round(pv, 4))


# --- what a tag says in the project's vocabulary (the facts-only baseline, pseudo-labels) -------
#: tags (either head, lower case) that name a General-MIDI instrument family
#: (``musilingo.music.GM_FAMILIES``); harpsichord is a GM piano, the harp a GM string instrument
TAG_FAMILIES: dict[str, str] = {
    "piano": "piano", "harpsichord": "piano", "guitar": "guitar", "strings": "strings",
    "violin": "strings", "cello": "strings", "harp": "strings", "flute": "pipe",
    "synth": "synth lead", "sitar": "ethnic",
}
#: tags that say drums play
DRUM_TAGS = frozenset({"drums", "beat", "beats"})


def tag_families(found: Tags) -> frozenset[str]:
    """GM families named by the reported tags."""
    return frozenset(TAG_FAMILIES[t.name] for t in found.tags if t.name in TAG_FAMILIES)


def tag_drums(found: Tags) -> bool:
    """Whether a reported tag says drums play."""
    return any(t.name in DRUM_TAGS for t in found.tags)


def tag_style(found: Tags) -> str | None:
    """The strongest reported tag that is a style the project knows
    (``musilingo.music.canonical_style``), canonical; None if no tag is one."""
    from musilingo.music import STYLES, canonical_style

    known = {canonical_style(s) for s in STYLES}
    for t in found.tags:  # strongest first
        if canonical_style(t.name) in known:
            return canonical_style(t.name)
    return None
