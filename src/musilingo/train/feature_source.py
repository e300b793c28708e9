"""Features for training batches: from the shared feature cache (:mod:`musilingo.features`), or
encoded on the fly as the published code does, moved in pitch for transposed key samples."""

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
        if cfg.feature_cache:
            from musilingo.features import FeatureCache

            self.cache = FeatureCache(cfg.feature_cache, model.feature_spec)
            missing = [r.id for r in records if r.id not in self.cache]
            if missing:
                raise ManifestError(f"{len(missing)} clips could not be encoded (see "
                                    f"{self.cache.dir / 'errors.jsonl'}), e.g. {missing[:3]}")

    def batch(self, samples: list[Sample]) -> list[torch.Tensor]:
        """The features of each sample's clip, moved by the sample's ``transpose``."""
        from musilingo.encoders.basic_pitch import transpose_features

        feats = self.get([s.clip_id for s in samples])
        for i, s in enumerate(samples):
            if s.transpose:
                for o in self.pitch_offsets:
                    feats[i] = transpose_features(feats[i], s.transpose, o)
        return feats

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
