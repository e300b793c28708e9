"""A cache of pooled encoder features, so training and evaluation run the frozen encoder once.

:class:`FeatureSpec` is everything that determines the features (encoder, pooling window,
analysis window, loudness); its ``key()`` keys the cache.

Layout: ``ROOT/<key hash>/key.json`` (the spec's key), ``index.json`` (clip id -> shard) and
``shard-NNNNN.safetensors`` files. Because the folder name is a hash of the key, a cache made with
another encoder or pooling is never read by mistake, and ``key.json`` is checked on open as well.
Shards and the index are written atomically; a killed job loses at most the shard it was filling
and resumes with the clips that are not in the index. Clips that cannot be decoded are listed in
``errors.jsonl`` and skipped. A spec with ``facts`` also keeps each window's measured facts
(:mod:`musilingo.analysis`) in ``facts.jsonl`` beside the shards: one line per clip, appended
and fsynced, so the analysis runs once per window like the encoder (a torn last line is ignored
and redone). Each line carries the analysis' ``fingerprint()``; lines of another analysis (other
fitted constants, older code) are ignored, so those clips are measured again. This module does
not train.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from musilingo.analysis import fingerprint as analysis_fingerprint
from musilingo.analysis.facts import Facts, merge_facts
from musilingo.audio import MAX_DURATION_S, load_audio, split_windows
from musilingo.data.manifest import Record, append_jsonl, atomic_write_text
from musilingo.encoders.base import Encoder, encode_pooled
from musilingo.errors import AudioError, CheckpointError

log = logging.getLogger(__name__)
CACHE_VERSION = 1
SHARD_CLIPS = 256  # clips per shard file at most
SHARD_SECONDS = 60.0  # ... and a shard at least every minute, so a kill loses at most a minute


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that decides a clip's pooled features, as one value: what the model, training,
    evaluation and the cache pass around (the cache's key is :meth:`key`)."""

    encoder: Encoder
    """the frozen encoder (its ``cache_key()`` names its weights and settings)"""
    pool_window: int
    """encoder frames averaged into one audio token"""
    window_s: float = 30.0
    """analysis window in seconds; longer audio is encoded window by window"""
    loudness_lufs: float | None = None
    """normalise each window to this loudness before the encoder; None = as recorded"""
    facts: bool = False
    """also measure each window's facts (not part of the key: facts sit beside the features)"""

    def key(self) -> dict:
        """The cache key: every setting above, the encoder by its ``cache_key()``."""
        key = {"version": CACHE_VERSION, "encoder": self.encoder.cache_key(),
               "pool_window": self.pool_window, "window_s": self.window_s}
        if self.loudness_lufs is not None:  # absent when off: caches made before stay valid
            key["loudness_lufs"] = float(self.loudness_lufs)
        return key

    def encode(self, clips: Sequence[np.ndarray], device: str | torch.device = "cpu"
               ) -> list[torch.Tensor]:
        """Pooled features of mono clips at ``encoder.sample_rate`` (each at most one window):
        per clip [n_tokens, D]."""
        return encode_pooled(self.encoder, clips, self.pool_window, device,
                             loudness_lufs=self.loudness_lufs)

    def measure(self, clips: Sequence[np.ndarray]) -> list[Facts | None]:
        """The measured facts of mono windows at ``encoder.sample_rate``, as recorded (before any
        loudness normalisation); None for a window the analysis cannot measure (shorter than
        2 s, silent)."""
        from musilingo.analysis import analyze

        out: list[Facts | None] = []
        for c in clips:
            try:
                out.append(analyze(c, self.encoder.sample_rate))
            except ValueError:
                out.append(None)
        return out


def key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


class FeatureCache:
    """Pooled features per clip id: ``cache[id] -> Tensor [n_tokens, D]``, for one spec."""

    def __init__(self, root: str | os.PathLike, spec: FeatureSpec):
        self.key = json.loads(json.dumps(spec.key(), sort_keys=True, default=str))
        self.dir = Path(root) / key_hash(self.key)
        self.dir.mkdir(parents=True, exist_ok=True)
        key_file = self.dir / "key.json"
        if key_file.is_file():
            if json.loads(key_file.read_text()) != self.key:
                raise CheckpointError(f"{key_file}: feature cache key does not match this encoder")
        else:
            atomic_write_text(key_file, json.dumps(self.key, indent=2, sort_keys=True) + "\n")
        index_file = self.dir / "index.json"
        self.index: dict[str, str] = json.loads(index_file.read_text()) if index_file.is_file() else {}
        self._shards: dict[str, dict[str, torch.Tensor]] = {}
        self._facts: dict[str, list[dict | None]] | None = None

    # ------------------------------------------------------------- measured facts (facts.jsonl)
    def _facts_table(self) -> dict[str, list[dict | None]]:
        if self._facts is None:
            self._facts = {}
            path = self.dir / "facts.jsonl"
            current = analysis_fingerprint()
            if path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        row = json.loads(line)
                        if row.get("analysis") == current:  # else measured by another analysis
                            self._facts[row["id"]] = row["windows"]
                    except (ValueError, KeyError, TypeError, AttributeError):
                        continue  # a line torn by a kill: that clip is measured again
        return self._facts

    def has_facts(self, clip_id: str) -> bool:
        return clip_id in self._facts_table()

    def facts(self, clip_id: str) -> list[Facts | None]:
        """The clip's measured facts per window (None for a window that could not be measured)."""
        return [None if d is None else Facts.from_dict(d) for d in self._facts_table()[clip_id]]

    def merged_facts(self, clip_id: str) -> Facts | None:
        """The clip's facts merged over the windows that could be measured (``merge_facts``, as
        the model reads them); None when no window was measured or the clip has no facts here."""
        if not self.has_facts(clip_id):
            return None
        windows = [f for f in self.facts(clip_id) if f is not None]
        return merge_facts(windows) if windows else None

    def put_facts(self, items: dict[str, list[Facts | None]]) -> None:
        table = self._facts_table()
        fp = analysis_fingerprint()
        for clip_id, windows in items.items():
            row = [None if f is None else f.to_dict() for f in windows]
            append_jsonl(self.dir / "facts.jsonl", {"id": clip_id, "analysis": fp, "windows": row})
            table[clip_id] = row

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self.index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, clip_id: str) -> torch.Tensor:
        from safetensors.torch import load_file

        shard = self.index[clip_id]
        if shard not in self._shards:
            self._shards[shard] = load_file(str(self.dir / shard))
        return self._shards[shard][clip_id]

    def ids(self) -> list[str]:
        return list(self.index)

    def put(self, items: dict[str, torch.Tensor]) -> None:
        """Write ``items`` as one new shard, then publish them in the index (both atomic)."""
        from safetensors.torch import save_file

        if not items:
            return
        n = len({v for v in self.index.values()})
        while (self.dir / f"shard-{n:05d}.safetensors").exists():
            n += 1
        name = f"shard-{n:05d}.safetensors"
        tmp = self.dir / f".{name}.tmp"
        save_file({k: v.contiguous().float() for k, v in items.items()}, str(tmp))
        os.replace(tmp, self.dir / name)
        self.index.update({k: name for k in items})
        atomic_write_text(self.dir / "index.json", json.dumps(self.index) + "\n")


def build_feature_cache(spec: FeatureSpec, records: Iterable[Record], root: str | os.PathLike,
                        batch_size: int = 8, device: str = "cpu", progress: bool = True,
                        max_duration_s: float | None = MAX_DURATION_S,
                        ) -> tuple[FeatureCache, dict]:
    """Encode every record not yet cached (and measure its facts when ``spec.facts``); returns
    the cache and stats (clips/s, errors)."""
    encoder = spec.encoder
    cache = FeatureCache(root, spec)
    todo = [r for r in records if r.id not in cache or (spec.facts and not cache.has_facts(r.id))]
    stats = {"cached_before": len(cache), "encoded": 0, "errors": 0, "seconds": 0.0, "audio_s": 0.0,
             "failed": {}}
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="clip", file=sys.stderr, dynamic_ncols=True)
    pending: dict[str, torch.Tensor] = {}
    t0 = last_flush = time.perf_counter()
    i = 0
    while i < len(todo):
        batch, clips, owners = todo[i: i + batch_size], [], []
        i += batch_size
        for r in batch:
            try:
                samples, sr = load_audio(r.audio, encoder.sample_rate, max_duration_s)
            except AudioError as e:
                stats["errors"] += 1
                stats["failed"][r.id] = str(e)
                append_jsonl(cache.dir / "errors.jsonl", {"id": r.id, "audio": r.audio, "error": str(e)})
                log.warning("%s", e)
                continue
            stats["audio_s"] += len(samples) / sr
            windows = split_windows(samples, sr, spec.window_s)
            if spec.facts and not cache.has_facts(r.id):
                cache.put_facts({r.id: spec.measure([w.samples for w in windows])})
            if r.id in cache:
                continue
            for w in windows:
                clips.append(w.samples)
                owners.append(r.id)
        if clips:
            feats = spec.encode(clips, device)
            per_id: dict[str, list[torch.Tensor]] = {}
            for owner, f in zip(owners, feats):
                per_id.setdefault(owner, []).append(f.cpu())
            for owner, parts in per_id.items():
                pending[owner] = torch.cat(parts, dim=0)
            stats["encoded"] += len(per_id)
        if len(pending) >= SHARD_CLIPS or time.perf_counter() - last_flush > SHARD_SECONDS:
            cache.put(pending)
            pending = {}
            last_flush = time.perf_counter()
        if bar:
            bar.update(len(batch))
    cache.put(pending)
    if bar:
        bar.close()
    stats["seconds"] = time.perf_counter() - t0
    stats["clips_per_s"] = stats["encoded"] / stats["seconds"] if stats["seconds"] > 0 else None
    return cache, stats


def feature_spec_from(name: str) -> FeatureSpec:
    """The feature spec of a model folder or preset, or of a bare encoder spec (no loudness
    normalisation, 30 s windows, the encoder's default pooling).

    Encoder specs: ``musicnn``, ``musicnn-mtt``, ``basic-pitch``, ``musicnn+basic-pitch``,
    ``mert:PATH_OR_ID``, ``random-mert``. A model folder or preset uses its config (the LLM is
    not loaded).
    """
    from musilingo.config import PRESETS, default_pool_window, encoder_config_from_spec, resolve_config
    from musilingo.encoders import build_encoder

    if name in PRESETS or Path(name).is_dir():
        cfg, _ = resolve_config(name)
        return FeatureSpec(build_encoder(cfg.encoder), cfg.pool_window, cfg.window_s,
                           cfg.loudness_lufs, cfg.facts)
    enc_cfg = encoder_config_from_spec(name)
    return FeatureSpec(build_encoder(enc_cfg), default_pool_window(enc_cfg))
