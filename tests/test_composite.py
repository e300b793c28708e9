"""CompositeEncoder: grid alignment, resampling per child, padding invariance.

Most tests use tiny deterministic fake encoders, so they do not depend on real models; one test
combines a fake with the real BasicPitchEncoder (skipped when basic-pitch is not installed).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soxr
import torch

from musilingo.encoders.base import Encoder, EncoderOutput
from musilingo.encoders.composite import CompositeEncoder, align_frames, resampled_length
from musilingo.errors import ConfigError


class FakeEncoder(Encoder):
    """Frame i of a clip = [i, rms of its samples in frame i, the clip's length, 1, 1, ...]:
    non-overlapping frames of ``hop`` samples, ``floor`` or ``ceil`` of n / hop of them."""

    def __init__(self, sample_rate: int, hop: int, dim: int, name: str, ceil: bool = False):
        super().__init__()
        self.sample_rate, self.hop, self.feature_dim = sample_rate, hop, dim
        self.frame_rate = sample_rate / hop
        self.name, self.ceil = name, ceil
        self.seen_lengths: list[list[int]] = []

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // self.hop) if self.ceil else num_samples // self.hop

    def cache_key(self) -> dict:
        return {"name": self.name, "hop": self.hop}

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        self.seen_lengths.append(lengths.tolist())
        counts = [self.num_frames(int(n)) for n in lengths]
        T = max(counts)
        frames = torch.zeros(len(counts), T, self.feature_dim)
        for b, (n, c) in enumerate(zip(lengths.tolist(), counts, strict=True)):
            for i in range(c):
                seg = audio[b, i * self.hop : min((i + 1) * self.hop, n)]
                frames[b, i, 0] = i
                frames[b, i, 1] = seg.pow(2).mean().sqrt()
                frames[b, i, 2] = n
                frames[b, i, 3:] = 1.0
        mask = torch.arange(T)[None] < torch.tensor(counts)[:, None]
        return EncoderOutput(frames, mask)


def fast() -> FakeEncoder:
    return FakeEncoder(16000, 1600, 4, "fast")  # 10 frames/s


def slow() -> FakeEncoder:
    return FakeEncoder(8000, 4000, 3, "slow")  # 2 frames/s


def noise(seconds: float, sr: int = 16000, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((0.3 * rng.standard_normal(int(seconds * sr))).astype(np.float32))


def test_defaults_and_cache_key():
    comp = CompositeEncoder([fast(), slow()])
    assert comp.sample_rate == 16000 and comp.frame_rate == 2.0 and comp.feature_dim == 7
    key = comp.cache_key()
    json.dumps(key)
    assert key["children"] == [{"name": "fast", "hop": 1600}, {"name": "slow", "hop": 4000}]
    assert key != CompositeEncoder([fast(), slow()], frame_rate=4.0).cache_key()
    assert key != CompositeEncoder([slow(), fast()]).cache_key()


def test_downsampling_averages_child_frames():
    f, s = fast(), slow()
    comp = CompositeEncoder([f, s])
    out = comp.encode([noise(3.0)])
    assert out.frames.shape == (1, 6, 7) and bool(out.mask.all())
    # fast frames 5j..5j+4 (centres in [j/2, (j+1)/2)) are averaged into grid frame j
    assert out.frames[0, :, 0].tolist() == [5 * j + 2 for j in range(6)]
    # the slow child runs at the grid rate: it passes through one to one
    assert out.frames[0, :, 4].tolist() == list(range(6))
    assert s.seen_lengths == [[24000]]  # it received 8 kHz audio
    # the averaged rms channel equals the mean of the child's own frames
    alone = f.encode([noise(3.0)])
    torch.testing.assert_close(out.frames[0, :, 1], alone.frames[0, :30, 1].view(6, 5).mean(1))


def test_upsampling_repeats_child_frames():
    comp = CompositeEncoder([fast(), slow()], frame_rate=10.0)
    out = comp.encode([noise(3.0)])
    assert out.frames.shape == (1, 30, 7)
    assert out.frames[0, :, 0].tolist() == list(range(30))  # reference child: identity
    assert out.frames[0, :, 4].tolist() == [j // 5 for j in range(30)]  # repetition


def brute_force_align(frames: np.ndarray, r: float, R: float, T: int) -> np.ndarray:
    L, D = frames.shape
    out = np.zeros((T, D))
    for j in range(T):
        members = [i for i in range(L) if j / R <= (i + 0.5) / r < (j + 1) / R]
        if members:
            out[j] = frames[members].mean(axis=0)
        elif L:
            out[j] = frames[min(max(math.floor((j + 0.5) / R * r), 0), L - 1)]
    return out


@pytest.mark.parametrize("r,R,L,T", [(10, 4, 30, 12), (10, 3, 25, 9), (2, 3, 6, 9),
                                     (86.1328125, 1 / 3, 700, 3), (7, 7, 5, 9), (5, 2, 0, 4)])
def test_align_frames_matches_brute_force(r, R, L, T):
    frames = np.random.default_rng(L).standard_normal((L, 3))
    got = align_frames(torch.from_numpy(frames), r, R, T).numpy()
    np.testing.assert_allclose(got, brute_force_align(frames, r, R, T), atol=1e-12)


def test_grid_without_reference_child():
    comp = CompositeEncoder([fast(), slow()], frame_rate=4.0)
    assert comp.num_frames(16000 * 3) == 12 and comp.num_frames(16001 * 3) == 13
    out = comp.encode([noise(3.0)])
    assert out.frames.shape == (1, 12, 7)
    # fast centres (i + 0.5) / 10 in [j / 4, (j + 1) / 4): grid 0 <- {0, 1}, 1 <- {2, 3, 4}, ...
    assert out.frames[0, :4, 0].tolist() == [0.5, 3.0, 5.5, 8.0]


def test_padded_batch_equals_one_by_one():
    comp = CompositeEncoder([fast(), slow()], frame_rate=4.0, sample_rate=22050)
    clips = [noise(3.3, 22050, 1), noise(1.1, 22050, 2), noise(2.05, 22050, 3)]
    batch = comp.encode(clips)
    counts = [comp.num_frames(len(c)) for c in clips]
    assert batch.mask.sum(1).tolist() == counts and batch.frames.shape[1] == max(counts)
    for b, c in enumerate(clips):
        alone = comp.encode([c])
        assert alone.frames.shape[1] == counts[b]
        torch.testing.assert_close(batch.frames[b, : counts[b]], alone.frames[0])
        assert float(batch.frames[b, counts[b] :].abs().sum()) == 0.0
    # each child saw its clip's own length, resampled, in the padded batch
    assert comp.encoders[1].seen_lengths[0] == [resampled_length(len(c), 22050, 8000)
                                                for c in clips]


def test_short_clip_child_without_frames_gives_zeros():
    assert CompositeEncoder([fast(), slow()]).num_frames(4800) == 0  # slow needs 0.5 s
    comp = CompositeEncoder([fast(), slow()], frame_rate=10.0)
    out = comp.encode([noise(0.3)])
    assert out.frames.shape == (1, 3, 7) and bool(out.mask.all())
    assert float(out.frames[0, :, 4:].abs().sum()) == 0.0
    assert out.frames[0, :, 0].tolist() == [0, 1, 2]


def test_resampled_length_matches_soxr():
    rng = np.random.default_rng(0)
    for a, b in [(16000, 22050), (22050, 16000), (44100, 22050), (22050, 8000)]:
        for n in [1, 7, 999, *rng.integers(1, 100000, 20).tolist()]:
            got = len(soxr.resample(np.zeros(n, np.float32), a, b, quality="HQ"))
            assert abs(resampled_length(n, a, b) - got) <= (1 if (2 * n * b) % (2 * a) == a else 0)


def test_invalid_settings():
    with pytest.raises(ConfigError):
        CompositeEncoder([])
    with pytest.raises(ConfigError):
        CompositeEncoder([fast()], frame_rate=0.0)


def test_with_real_basic_pitch():
    bp = pytest.importorskip("musilingo.encoders.basic_pitch")
    try:
        pitch = bp.BasicPitchEncoder(num_threads=2)
    except ConfigError as e:
        pytest.skip(str(e))
    comp = CompositeEncoder([slow(), pitch])
    assert comp.sample_rate == 22050 and comp.frame_rate == 2.0 and comp.feature_dim == 443
    sr = 22050
    t = np.arange(3 * sr) / sr
    a4 = torch.from_numpy((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    out = comp.encode([a4, a4[: sr]])
    assert out.frames.shape == (2, 6, 443) and out.mask.sum(1).tolist() == [6, 2]
    note = out.frames[0, 1:-1, 3 : 3 + 88]  # inner grid frames, note posteriorgram block
    assert (note.argmax(dim=1) == 69 - 21).all()
    # each grid frame is the mean of the basic-pitch frames whose centres fall in its 0.5 s
    direct = pitch.encode([a4]).frames[0]
    torch.testing.assert_close(out.frames[0, :, 3:],
                               align_frames(direct, pitch.frame_rate, 2.0, 6))
    assert float(out.frames[0, :, 3:].min()) >= 0.0 and float(out.frames[0, :, 3:].max()) <= 1.0
