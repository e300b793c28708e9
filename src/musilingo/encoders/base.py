"""The one small interface every music encoder implements, and time pooling of its frames.

An encoder takes a padded batch of mono audio at its own ``sample_rate`` plus the true length of
each clip and returns frames at ``frame_rate`` with a validity mask. Padding must never change the
features of a clip: a padded batch gives the same frames as each clip alone. Encoders are frozen
feature extractors here; training happens in the projector (and optionally LoRA on the LLM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class EncoderOutput:
    """Frames of a batch.

    frames: [B, T, D] float; positions past a clip's end hold zeros.
    mask:   [B, T] bool; True where the frame belongs to the clip.
    """

    frames: torch.Tensor
    mask: torch.Tensor


class Encoder(nn.Module):
    """Base class. Subclasses set the attributes and implement :meth:`forward`."""

    #: input audio rate in Hz (mono float32 in [-1, 1])
    sample_rate: int
    #: output frames per second of audio
    frame_rate: float
    #: feature size of one frame
    feature_dim: int

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """audio: [B, S] float32 at ``sample_rate``; lengths: [B] long, valid samples per clip."""
        raise NotImplementedError

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a clip of ``num_samples`` samples (at ``sample_rate``)."""
        raise NotImplementedError

    def cache_key(self) -> dict:
        """Everything that determines the features (name, weights id, settings), for caches."""
        raise NotImplementedError

    def encode(self, clips: list[torch.Tensor]) -> EncoderOutput:
        """Convenience: pad a list of 1-D clips and run :meth:`forward`."""
        lengths = torch.tensor([len(c) for c in clips], dtype=torch.long)
        audio = torch.zeros(len(clips), int(lengths.max()), dtype=torch.float32)
        for i, c in enumerate(clips):
            audio[i, : len(c)] = torch.as_tensor(c, dtype=torch.float32)
        return self(audio, lengths)


def check_batch(audio: torch.Tensor, lengths: torch.Tensor) -> list[int]:
    """Validate a padded batch (audio [B, S], lengths [B]) and return the lengths as ints."""
    if audio.dim() != 2:
        raise ValueError(f"audio must be [B, S], got shape {tuple(audio.shape)}")
    B, S = audio.shape
    lens = [int(n) for n in torch.as_tensor(lengths).reshape(-1).tolist()]
    if len(lens) != B:
        raise ValueError(f"lengths has {len(lens)} entries for a batch of {B}")
    if any(n < 0 or n > S for n in lens):
        raise ValueError(f"lengths must lie in [0, {S}], got {lens}")
    return lens


def num_pooled_tokens(num_frames: int, window: int) -> int:
    """Tokens after pooling: one per full window plus one for the remainder (= ceil)."""
    return max(1, math.ceil(num_frames / window))


def pool_frames(frames: torch.Tensor, mask: torch.Tensor, window: int) -> EncoderOutput:
    """Mean over non-overlapping windows of ``window`` frames, per clip (MusiLingo's pooling).

    frames [B, T, D], mask [B, T] -> tokens [B, N, D], token mask [B, N], where a clip with L
    valid frames gives ceil(L / window) tokens; the last averages the remainder. Only valid
    frames are averaged, so a clip pools the same in a padded batch as alone. ``window=1``
    returns the frames unchanged.
    """
    if window <= 1:
        return EncoderOutput(frames, mask)
    B, T, D = frames.shape
    lengths = mask.sum(dim=1)
    n_tok = [num_pooled_tokens(int(n), window) for n in lengths]
    N = max(n_tok)
    pad = N * window - T
    if pad > 0:
        frames = torch.nn.functional.pad(frames, (0, 0, 0, pad))
        mask = torch.nn.functional.pad(mask, (0, pad))
    else:
        frames, mask = frames[:, : N * window], mask[:, : N * window]
    m = mask.to(frames.dtype).view(B, N, window, 1)
    summed = (frames.view(B, N, window, D) * m).sum(dim=2)
    counts = m.sum(dim=2)
    tokens = summed / counts.clamp(min=1)
    tok_mask = torch.arange(N, device=frames.device)[None, :] < torch.tensor(n_tok, device=frames.device)[:, None]
    return EncoderOutput(tokens * tok_mask[..., None].to(tokens.dtype), tok_mask)


@torch.no_grad()
def encode_pooled(encoder: Encoder, clips, window: int, device: torch.device | str = "cpu",
                  loudness_lufs: float | None = None) -> list[torch.Tensor]:
    """Encode a batch of mono clips (1-D arrays at ``encoder.sample_rate``) and pool each one.

    ``loudness_lufs``: first normalise each clip to this loudness (``audio.normalize_loudness``).
    Returns per clip its audio tokens' features [n_i, D] (float32), n_i = ceil(frames / window).
    """
    if loudness_lufs is not None:
        from musilingo.audio import normalize_loudness

        clips = [normalize_loudness(np.asarray(c, dtype=np.float32), encoder.sample_rate, loudness_lufs)
                 for c in clips]
    lengths = torch.tensor([len(c) for c in clips], dtype=torch.long)
    audio = torch.zeros(len(clips), int(lengths.max()), dtype=torch.float32)
    for i, c in enumerate(clips):
        audio[i, : len(c)] = torch.as_tensor(c, dtype=torch.float32)
    out = encoder(audio.to(device), lengths.to(device))
    pooled = pool_frames(out.frames, out.mask, window)
    return [pooled.frames[i, pooled.mask[i]].float() for i in range(len(clips))]
