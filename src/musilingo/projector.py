"""The trainable bridge from pooled encoder features to LLM input embeddings.

One config string picks the architecture: ``linear`` (the paper: one ``nn.Linear``) or
``mlp2x_gelu`` (Linear -> GELU -> Linear, LLaVA-1.5 style). An optional feature standardiser
(fixed mean/std buffers, set from training data) puts features of very different scales (musicnn
activations, basic-pitch posteriors) on one footing; it is off for the paper configuration.

An optional summary token (off in the paper configuration) adds one more audio token per clip: its
own linear projection of the clip's mean feature, i.e. what a linear probe on mean-pooled features
sees. The LLM then reads whole-clip attributes (key, metre) from one token instead of having to
average ~3 s tokens with attention.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musilingo.errors import ConfigError

PROJECTOR_KINDS = ("linear", "mlp2x_gelu")


class Projector(nn.Module):
    """Maps features [..., in_dim] to embeddings [..., out_dim]."""

    def __init__(self, kind: str, in_dim: int, out_dim: int, feature_norm: bool = False,
                 summary_token: bool = False):
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
        self.summary = nn.Linear(in_dim, out_dim) if summary_token else None

    def num_tokens(self, n_frames: int) -> int:
        """Audio tokens of a clip with ``n_frames`` feature frames: one per frame, plus the summary
        token when enabled (not for zero frames: no audio at all, as the no-audio baseline asks)."""
        return n_frames + (1 if self.summary is not None and n_frames > 0 else 0)

    @torch.no_grad()
    def set_feature_stats(self, features: torch.Tensor) -> None:
        """Set the standardiser from training features [N, in_dim] (no-op without feature_norm)."""
        if not self.feature_norm:
            return
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp(min=1e-4))

    def _standardise(self, features: torch.Tensor) -> torch.Tensor:
        x = features.to(self.net[0].weight.dtype)
        if self.feature_norm:
            x = (x - self.feature_mean.to(x.dtype)) / self.feature_std.to(x.dtype)
        return x

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame tokens: features [..., in_dim] -> [..., out_dim] (no summary token)."""
        return self.net(self._standardise(features))

    def project_clips(self, clips: Sequence[torch.Tensor]) -> torch.Tensor:
        """Audio tokens of several clips ([n_i, in_dim] each), concatenated in order: each clip's
        n_i frame tokens, then its summary token when enabled -> [sum(num_tokens(n_i)), out_dim]."""
        x = self._standardise(torch.cat(list(clips), dim=0))
        frames = self.net(x)
        if self.summary is None:
            return frames
        out, start = [], 0
        for c in clips:
            clip = slice(start, start + len(c))
            out.append(frames[clip])
            if len(c):  # the mean of zero frames is NaN: a clip without audio has no summary
                out.append(self.summary(x[clip].mean(0, keepdim=True)))
            start += len(c)
        return torch.cat(out, dim=0)
