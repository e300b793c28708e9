"""Several encoders side by side: their frames concatenated on one common time grid.

``CompositeEncoder([timbre, pitch])`` feeds, for example, musicnn features (~0.33 frames/s,
1706-d) and Basic Pitch posteriorgrams (~86 frames/s, 440-d) into one projection as
2146-d frames. Audio enters at the composite's ``sample_rate`` (default: the highest child rate)
and is resampled for each child with soxr (:func:`musilingo.audio.resample`), clip by clip from
its valid samples only, so a padded batch gives the same frames as each clip alone.

The common grid (``frame_rate``, default: the lowest child frame rate). Output frame ``j``
covers ``[j / R, (j + 1) / R)`` seconds; child frame ``i`` of a child at ``r`` frames/s is taken
to cover ``[i / r, (i + 1) / r)``. Alignment, per child:

* each valid child frame goes to the output frame that contains its centre ``(i + 0.5) / r``,
  and an output frame is the mean of the child frames it received (downsampling by averaging;
  a child frame straddling a boundary counts once, for the side holding its centre);
* an output frame that received none (upsampling, or the child's frames end earlier) repeats
  the child frame whose span holds the output frame's centre, clamped to the child's last valid
  frame (upsampling by repetition); a child with no valid frame for a clip contributes zeros.

A child running at exactly the grid rate maps one to one (frame ``i`` -> ``j = i``).

Number of output frames for a clip: when some child runs at the grid rate (always so by
default), its :meth:`num_frames` for the clip's length at its own sample rate defines the grid,
so that child's frames pass through unchanged; otherwise ``ceil(seconds * frame_rate)`` (a
partial last frame counts), 0 for an empty clip. Child lengths after resampling are predicted as
``round(n * sr_child / sr)``, which is what soxr returns except on rare exact ties; a one-sample
miss is absorbed by the alignment above and never changes T or the mask.

What it does not do: learn anything, weight or normalise the children's features (the projector
sees them raw, concatenated in the order given), or run the children in parallel.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from musilingo.audio import resample
from musilingo.encoders.base import Encoder, EncoderOutput, check_batch
from musilingo.errors import ConfigError


def resampled_length(num_samples: int, sr_in: int, sr_out: int) -> int:
    """Samples soxr returns for ``num_samples`` resampled ``sr_in`` -> ``sr_out`` (round half up;
    soxr may differ by one on exact .5 ties)."""
    if sr_in == sr_out:
        return int(num_samples)
    return (2 * int(num_samples) * sr_out + sr_in) // (2 * sr_in)


def align_frames(frames: torch.Tensor, child_rate: float, grid_rate: float,
                 num_out: int) -> torch.Tensor:
    """Valid child frames ``[L, D]`` at ``child_rate`` -> ``[num_out, D]`` at ``grid_rate``.

    Mean of the child frames whose centre lies in each output frame; an output frame with none
    repeats the child frame under its centre (clamped to ``L - 1``); zeros when ``L == 0``.
    """
    L, D = frames.shape
    out = frames.new_zeros(num_out, D)
    if L == 0 or num_out == 0:
        return out
    device = frames.device
    centres = (torch.arange(L, dtype=torch.float64, device=device) + 0.5) / child_rate
    target = torch.floor(centres * grid_rate).long()
    keep = target < num_out
    target, src = target[keep], frames[keep]
    out.index_add_(0, target, src)
    counts = torch.bincount(target, minlength=num_out)[:num_out]
    out = out / counts.clamp(min=1).unsqueeze(1).to(out.dtype)
    empty = counts == 0
    if bool(empty.any()):
        j = torch.nonzero(empty).squeeze(1)
        under = torch.floor((j.double() + 0.5) / grid_rate * child_rate).long().clamp(0, L - 1)
        out[j] = frames[under]
    return out


class CompositeEncoder(Encoder):
    """Concatenate children's frames on one grid: ``feature_dim = sum`` of the children's.

    Args:
        encoders: the children, in feature order (their frames are concatenated in this order).
        frame_rate: common grid in frames/s; default: the lowest child frame rate.
        sample_rate: input audio rate in Hz; default: the highest child sample rate.
    """

    def __init__(self, encoders: list[Encoder], frame_rate: float | None = None,
                 sample_rate: int | None = None):
        super().__init__()
        if not encoders:
            raise ConfigError("CompositeEncoder needs at least one encoder")
        if frame_rate is not None and not frame_rate > 0:
            raise ConfigError(f"frame_rate must be positive, got {frame_rate}")
        if sample_rate is not None and not sample_rate > 0:
            raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
        self.encoders = nn.ModuleList(encoders)
        self.sample_rate = int(sample_rate or max(e.sample_rate for e in encoders))
        self.frame_rate = float(frame_rate or min(e.frame_rate for e in encoders))
        self.feature_dim = sum(int(e.feature_dim) for e in encoders)
        # the child whose own frames define the grid, if one runs at the grid rate
        self._reference = next((i for i, e in enumerate(encoders)
                                if math.isclose(e.frame_rate, self.frame_rate, rel_tol=1e-9)), None)

    def num_frames(self, num_samples: int) -> int:
        """Grid frames for ``num_samples`` samples at ``sample_rate`` (see module docstring)."""
        n = int(num_samples)
        if n <= 0:
            return 0
        if self._reference is not None:
            ref = self.encoders[self._reference]
            return int(ref.num_frames(resampled_length(n, self.sample_rate, ref.sample_rate)))
        return math.ceil(n * self.frame_rate / self.sample_rate - 1e-9)

    def cache_key(self) -> dict:
        """Children's keys plus the grid, input rate and alignment rule."""
        return {
            "name": "composite",
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "grid": ("child" if self._reference is not None else "ceil"),
            "grid_child": self._reference,
            "alignment": "centre-mean+repeat/v1",
            "resampler": "soxr-HQ",
            "children": [e.cache_key() for e in self.encoders],
        }

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """audio [B, S] float32 at ``sample_rate``, lengths [B] -> frames [B, T, feature_dim],
        mask [B, T], T = the largest :meth:`num_frames` of the batch."""
        lens = check_batch(audio, lengths)
        B, S = audio.shape
        counts = [self.num_frames(n) for n in lens]
        T = max(counts, default=0)
        samples = audio.detach().to("cpu", torch.float32).numpy()
        parts = []
        for enc in self.encoders:
            clips = [resample(np.ascontiguousarray(samples[b, :n]), self.sample_rate,
                              enc.sample_rate) if n > 0 else np.zeros(0, np.float32)
                     for b, n in enumerate(lens)]
            child = self._run_child(enc, clips, audio.device)
            block = audio.new_zeros(B, T, enc.feature_dim, dtype=torch.float32)
            for b in range(B):
                valid = int(child.mask[b].sum())
                block[b, : counts[b]] = align_frames(
                    child.frames[b, :valid].float(), enc.frame_rate, self.frame_rate, counts[b]
                ).to(block.device)
            parts.append(block)
        mask = torch.arange(T, device=audio.device)[None, :] < torch.tensor(
            counts, dtype=torch.long, device=audio.device)[:, None]
        return EncoderOutput(torch.cat(parts, dim=-1), mask)

    @staticmethod
    def _run_child(enc: Encoder, clips: list[np.ndarray], device: torch.device) -> EncoderOutput:
        """Pad the resampled clips into [B, S_child] on ``device`` and run the child."""
        lengths = torch.tensor([len(c) for c in clips], dtype=torch.long)
        audio = torch.zeros(len(clips), int(lengths.max()) if len(clips) else 0,
                            dtype=torch.float32)
        for b, c in enumerate(clips):
            audio[b, : len(c)] = torch.from_numpy(c)
        return enc(audio.to(device), lengths.to(device))
