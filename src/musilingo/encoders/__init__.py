"""Frozen music encoders behind one interface (see ``base.py``), built from an ``EncoderConfig``.

- ``mert``: MERT checkpoints through transformers' HubertModel (the paper's encoder)
- ``random-mert``: the same architecture with random weights (tests, speed benchmarks)
- ``musicnn``: our PyTorch port reading the TF1 checkpoints shipped in the musicnn wheel
- ``basic-pitch``: the ONNX pitch model shipped in the basic-pitch wheel
- ``composite``: concatenation of several encoders at a common frame rate
"""

from __future__ import annotations

from musilingo.config import EncoderConfig
from musilingo.encoders.base import Encoder, EncoderOutput, num_pooled_tokens, pool_frames

__all__ = ["Encoder", "EncoderOutput", "build_encoder", "num_pooled_tokens", "pool_frames"]


def build_encoder(cfg: EncoderConfig) -> Encoder:
    """Instantiate the encoder ``cfg`` describes (weights loaded, frozen, eval mode)."""
    if cfg.name == "mert":
        from musilingo.encoders.mert import MertEncoder

        return MertEncoder.from_pretrained(cfg.path, layers=cfg.layers)
    if cfg.name == "random-mert":
        from musilingo.encoders.mert import MERT_330M_CONFIG, TINY_MERT_CONFIG, random_mert

        shape = {"tiny": TINY_MERT_CONFIG, "330m": MERT_330M_CONFIG}[cfg.variant or "tiny"]
        return random_mert(shape, layers=cfg.layers)
    if cfg.name == "musicnn":
        from musilingo.encoders.musicnn import MusicnnEncoder

        return MusicnnEncoder(cfg.variant or "MSD_musicnn")
    if cfg.name == "basic-pitch":
        from musilingo.encoders.basic_pitch import BasicPitchEncoder

        # frames on the exact 86.13 fps grid (basic-pitch's own stitching drifts 8.5 ms per window)
        return BasicPitchEncoder(stitching="aligned")
    if cfg.name == "composite":
        from musilingo.encoders.composite import CompositeEncoder

        return CompositeEncoder([build_encoder(c) for c in cfg.children], frame_rate=cfg.frame_rate)
    raise AssertionError(cfg.name)  # EncoderConfig validated the name
