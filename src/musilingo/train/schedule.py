"""The learning-rate schedule: linear warmup from ``warmup_start_lr`` to ``lr``, then cosine decay
to ``min_lr`` at ``max_steps``."""

from __future__ import annotations

import math

from musilingo.train.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup from warmup_start_lr to lr, then cosine to min_lr (step counts from 0)."""
    if step < cfg.warmup_steps:
        return cfg.warmup_start_lr + (cfg.lr - cfg.warmup_start_lr) * step / max(1, cfg.warmup_steps)
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))
