"""The trainable bridge from pooled encoder features to LLM input embeddings.

One config string picks the architecture: ``linear`` (the paper: one ``nn.Linear``) or
``mlp2x_gelu`` (Linear -> GELU -> Linear, LLaVA-1.5 style). An optional feature standardiser
(fixed mean/std buffers, set from training data) puts features of very different scales (musicnn
activations, basic-pitch posteriors) on one footing; it is off for the paper configuration.
"""

from __future__ import annotations

import torch
from torch import nn

from musilingo.errors import ConfigError

PROJECTOR_KINDS = ("linear", "mlp2x_gelu")


class Projector(nn.Module):
    """Maps features [..., in_dim] to embeddings [..., out_dim]."""

    def __init__(self, kind: str, in_dim: int, out_dim: int, feature_norm: bool = False):
        super().__init__()
        if kind not in PROJECTOR_KINDS:
            raise ConfigError(f"unknown projector {kind!r}; choose one of {PROJECTOR_KINDS}")
        self.kind, self.in_dim, self.out_dim = kind, in_dim, out_dim
        if kind == "linear":
            self.net = nn.Sequential(nn.Linear(in_dim, out_dim))
        else:
            self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        self.feature_norm = feature_norm
        if feature_norm:
            self.register_buffer("feature_mean", torch.zeros(in_dim))
            self.register_buffer("feature_std", torch.ones(in_dim))

    @torch.no_grad()
    def set_feature_stats(self, features: torch.Tensor) -> None:
        """Set the standardiser from training features [N, in_dim] (no-op without feature_norm)."""
        if not self.feature_norm:
            return
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp(min=1e-4))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.to(self.net[0].weight.dtype)
        if self.feature_norm:
            x = (x - self.feature_mean.to(x.dtype)) / self.feature_std.to(x.dtype)
        return self.net(x)
