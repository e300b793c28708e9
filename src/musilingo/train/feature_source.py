"""Features for training batches: from the shared feature cache (:mod:`musilingo.features`), or
encoded on the fly as the published code does, moved in pitch for transposed key samples; and the
facts line of each sample for a model that reads measured facts (from the cache, the key moved
with the features; a text-only sample brings its own tags line and no audio)."""

from __future__ import annotations

import torch

from musilingo.data.manifest import Record
from musilingo.errors import ConfigError, ManifestError
from musilingo.train.config import TrainConfig
from musilingo.train.samples import Sample


class FeatureSource:
    """Pooled features per clip: from the cache, or by running the encoder now (on the fly)."""

    def __init__(self, model, records: list[Record], cfg: TrainConfig):
        from musilingo.encoders.basic_pitch import feature_offsets

        self.model = model
        self.audio = {r.id: r.audio for r in records}
        self.pitch_offsets = feature_offsets(model.encoder)  # where Basic Pitch's bins are
        if cfg.key_transpose and not self.pitch_offsets:
            raise ConfigError(f"key_transpose needs an encoder with Basic Pitch features, not "
                              f"{model.config.encoder.name!r}")
        self.cache = None
        if model.config.facts and not cfg.feature_cache:
            raise ConfigError("a model that reads measured facts trains from a feature cache "
                              "(the facts are measured once, beside the features): set feature_cache")
        if cfg.feature_cache:
            from musilingo.features import FeatureCache

            self.cache = FeatureCache(cfg.feature_cache, model.feature_spec)
            missing = [r.id for r in records if r.id not in self.cache
                       or (model.config.facts and not self.cache.has_facts(r.id))]
            if missing:
                raise ManifestError(f"{len(missing)} clips could not be encoded (see "
                                    f"{self.cache.dir / 'errors.jsonl'}), e.g. {missing[:3]}")

    def batch(self, samples: list[Sample]) -> list[torch.Tensor]:
        """The features of each sample's clip, moved by the sample's ``transpose``."""
        from musilingo.encoders.basic_pitch import transpose_features

        audio = [s.clip_id for s in samples if s.clip_id is not None]
        got = iter(self.get(audio) if audio else [])
        empty = torch.zeros(0, self.model.encoder.feature_dim)
        feats = [next(got) if s.clip_id is not None else empty for s in samples]
        for i, s in enumerate(samples):
            if s.transpose:
                for o in self.pitch_offsets:
                    feats[i] = transpose_features(feats[i], s.transpose, o)
        return feats

    def facts(self, samples: list[Sample]) -> list[str | None]:
        """Each sample's facts line: a text-only sample's own; an audio sample's measured facts
        (whole clip, key moved by ``transpose``) when the model reads facts, else None."""
        from dataclasses import replace

        from musilingo.music import transpose_tonic

        out: list[str | None] = []
        for s in samples:
            if s.clip_id is None or not self.model.config.facts:
                out.append(s.facts)
                continue
            windows = self.cache.facts(s.clip_id)
            if s.transpose:  # the key moves with the pitch features
                windows = [replace(f, key=replace(f.key, tonic=transpose_tonic(
                    f.key.tonic, f.key.mode, s.transpose))) if f is not None and f.key.tonal else f
                    for f in windows]
            out.append(self.model.facts_line(windows, None))
        return out

    def get(self, ids: list[str]) -> list[torch.Tensor]:
        if self.cache is not None:
            return [self.cache[i] for i in ids]
        # the same windows as the cache: each window encoded and pooled, windows concatenated;
        # at most 16 windows per encoder call, whatever the number of ids
        prepared = self.model.prepare([self.audio[i] for i in ids], batch_size=min(16, len(ids)))
        for p in prepared:
            if isinstance(p, Exception):
                raise p
        return [torch.cat(p.features, dim=0) for p in prepared]
