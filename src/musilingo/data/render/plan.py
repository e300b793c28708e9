"""The plan of a render: which clips, from which works, in which split.

What it does: defines :class:`ClipSpec` (one planned clip) and :func:`plan_clips`, the
deterministic list of clips for a seed (clip i depends only on the seed and i), and
:func:`split_for`, which puts a whole work in train, valid or test by a stable hash of its key.

What it does not: parse scores, write MIDI or audio, or decide anything random inside a clip
(tempo, instruments, transposition are drawn from the clip's own seed by the converters).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musilingo.data.render.catalogue import (
    ABC_GROUPS,
    M21_GROUPS,
    _abc_catalogue,
    _corpus_dir,
    _m21_catalogue,
    _mma_catalogue,
)
from musilingo.data.render.options import SOURCE_WEIGHTS, RenderOptions
from musilingo.errors import ConfigError

SPLIT_FRACTIONS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))


@dataclass(frozen=True)
class ClipSpec:
    """One planned clip; everything the worker needs besides the options."""

    index: int
    clip_id: str
    source: str
    collection: str
    group: str
    work_id: str
    split_key: str
    path: str = ""  # score / ABC file (absolute)
    tune: int = -1  # ABC: the n-th tune (0-based) of the file
    style_file: str = ""  # MMA style file stem
    groove: str = ""  # MMA groove
    soundfont: str = ""
    clip_len: float = 20.0
    seed: int = 0


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")[:60]


def split_for(key: str) -> str:
    """Split of a work: stable hash of its split key, ~80/10/10 train/valid/test."""
    h = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    acc = 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if h < acc:
            return name
    return SPLIT_FRACTIONS[-1][0]


def _pick_weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def plan_clips(options: RenderOptions) -> list[ClipSpec]:
    """The deterministic list of clips for the options' seed (clip i depends only on seed, i)."""
    m21 = _m21_catalogue() if "music21" in options.sources else {}
    abc = _abc_catalogue() if "abc" in options.sources else {}
    mma = _mma_catalogue() if "mma" in options.sources else []
    avail = {"music21": bool(m21), "abc": bool(abc), "mma": bool(mma)}
    weights = {s: SOURCE_WEIGHTS[s] for s in options.sources if avail[s]}
    if not weights:
        raise ConfigError(f"none of the sources {options.sources} has material on this machine")
    specs = []
    lo, hi = options.clip_seconds
    for i in range(options.num_clips):
        rng = np.random.default_rng([options.seed, i])
        source = _pick_weighted(rng, weights)
        clip_len = round(float(rng.uniform(lo, hi)), 2)
        sf = options.soundfonts[int(rng.integers(len(options.soundfonts)))]
        clip_seed = int(rng.integers(2**31))
        common = dict(index=i, source=source, soundfont=sf, clip_len=clip_len, seed=clip_seed)
        if source == "music21":
            group = _pick_weighted(rng, {g: M21_GROUPS[g]["weight"] for g in m21})
            path = m21[group][int(rng.integers(len(m21[group])))]
            rel = Path(path).relative_to(_corpus_dir())
            coll = rel.parts[0]
            work_id = rel.with_suffix("").as_posix()
            spec = ClipSpec(clip_id=f"{i:06d}-m21-{_slug(work_id)}", collection=coll,
                            group=group, work_id=work_id, split_key=work_id, path=path, **common)
        elif source == "abc":
            group = _pick_weighted(rng, {g: ABC_GROUPS[g]["weight"] for g in abc})
            path, tune, title = abc[group][int(rng.integers(len(abc[group])))]
            coll = Path(path).parent.name
            work_id = f"{coll}/{Path(path).stem}/{tune}"
            spec = ClipSpec(clip_id=f"{i:06d}-abc-{_slug(work_id)}", collection=coll,
                            group=group, work_id=work_id, split_key=f"tune:{title}", path=path,
                            tune=tune, **common)
        else:
            st, grooves = mma[int(rng.integers(len(mma)))]
            groove = grooves[int(rng.integers(len(grooves)))]
            work_id = f"mma/{groove.lower()}"
            spec = ClipSpec(clip_id=f"{i:06d}-mma-{_slug(groove.lower())}", collection=st.file,
                            group=st.genre, work_id=work_id, split_key=work_id,
                            style_file=st.file, groove=groove, **common)
        specs.append(spec)
    return specs
