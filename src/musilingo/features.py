"""A cache of pooled encoder features, so training and evaluation run the frozen encoder once.

Layout: ``ROOT/<key hash>/key.json`` (everything that determines the features: the encoder's
``cache_key()``, the pooling window, the analysis window), ``index.json`` (clip id -> shard) and
``shard-NNNNN.safetensors`` files. Because the folder name is a hash of the key, a cache made with
another encoder or pooling is never read by mistake, and ``key.json`` is checked on open as well.
Shards and the index are written atomically; a killed job loses at most the shard it was filling
and resumes with the clips that are not in the index. Clips that cannot be decoded are listed in
``errors.jsonl`` and skipped. This module does not train.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Iterable

import torch

from musilingo.audio import MAX_DURATION_S, load_audio, split_windows
from musilingo.data.manifest import Record, append_jsonl, atomic_write_text
from musilingo.encoders.base import Encoder, encode_pooled
from musilingo.errors import AudioError, CheckpointError

log = logging.getLogger(__name__)
CACHE_VERSION = 1
SHARD_CLIPS = 256  # clips per shard file at most
SHARD_SECONDS = 60.0  # ... and a shard at least every minute, so a kill loses at most a minute


def feature_key(encoder: Encoder, pool_window: int, window_s: float,
                loudness_lufs: float | None = None) -> dict:
    key = {"version": CACHE_VERSION, "encoder": encoder.cache_key(), "pool_window": pool_window,
           "window_s": window_s}
    if loudness_lufs is not None:  # absent when off, so caches made before the option stay valid
        key["loudness_lufs"] = float(loudness_lufs)
    return key


def key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


class FeatureCache:
    """Pooled features per clip id: ``cache[id] -> Tensor [n_tokens, D]``."""

    def __init__(self, root: str | os.PathLike, key: dict):
        self.key = json.loads(json.dumps(key, sort_keys=True, default=str))
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


def build_feature_cache(encoder: Encoder, records: Iterable[Record], root: str | os.PathLike,
                        pool_window: int, window_s: float = 30.0, batch_size: int = 8,
                        device: str = "cpu", progress: bool = True,
                        max_duration_s: float | None = MAX_DURATION_S,
                        loudness_lufs: float | None = None) -> tuple[FeatureCache, dict]:
    """Encode every record not yet cached; returns the cache and stats (clips/s, errors)."""
    cache = FeatureCache(root, feature_key(encoder, pool_window, window_s, loudness_lufs))
    todo = [r for r in records if r.id not in cache]
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
            for w in split_windows(samples, sr, window_s):
                clips.append(w.samples)
                owners.append(r.id)
        if clips:
            feats = encode_pooled(encoder, clips, pool_window, device, loudness_lufs)
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


def encoder_from_spec(spec: str):
    """Build (encoder, pool_window, window_s, loudness_lufs) from a model folder/preset or an
    encoder spec (a bare spec: no loudness normalisation).

    Specs: ``musicnn``, ``musicnn-mtt``, ``basic-pitch``, ``musicnn+basic-pitch``,
    ``mert:PATH_OR_ID``, ``random-mert``. A model folder or preset name uses its config (the LLM is
    not loaded).
    """
    from musilingo.config import PRESETS, default_pool_window, encoder_config_from_spec
    from musilingo.encoders import build_encoder
    from musilingo.model import resolve_config

    if spec in PRESETS or Path(spec).is_dir():
        cfg, _ = resolve_config(spec)
        return build_encoder(cfg.encoder), cfg.pool_window, cfg.window_s, cfg.loudness_lufs
    enc_cfg = encoder_config_from_spec(spec)
    return build_encoder(enc_cfg), default_pool_window(enc_cfg), 30.0, None


def features_command(manifest: str, out: str, model: str | None = None, encoder: str | None = None,
                     batch_size: int = 8, device: str = "cpu", skip_missing: bool = False,
                     split: str | None = None) -> int:
    """``musilingo features``: fill the feature cache for a manifest; prints clips/s."""
    from musilingo.data.manifest import check_audio_exists, read_manifest

    records = [r for r in read_manifest(manifest) if split is None or r.split == split]
    records, skipped = check_audio_exists(records, skip_missing, where=manifest)
    enc, window, window_s, lufs = encoder_from_spec(encoder or model or "default")
    enc = enc.to(device)
    cache, stats = build_feature_cache(enc, records, out, window, window_s, batch_size, device,
                                       loudness_lufs=lufs)
    stats.pop("failed")
    print(json.dumps({"cache": str(cache.dir), "clips": len(cache), "skipped_missing": skipped,
                      **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()}}))
    return 1 if stats["errors"] else 0
