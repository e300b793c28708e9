"""musicnn (Pons & Serra, 2019) in PyTorch, with the weights shipped in the ``musicnn`` wheel.

The ``musicnn`` package on PyPI carries TensorFlow-1 checkpoints of its taggers; this module reads
them with :mod:`musilingo.encoders.tf_checkpoint` (no TensorFlow needed) and re-implements the
network and its front end:

- front end as ``musicnn.extractor.batch_data``: 16 kHz audio, STFT n_fft 512 / hop 256 (periodic
  Hann, centred, reflect padding as in librosa 0.7), |X|^2, 96 Slaney mel bands (librosa's
  ``filters.mel`` defaults, computed here so librosa is not needed), then
  ``log10(10000 * mel + 1)``. musicnn computes that in float16, which overflows to inf for loud
  input (mel > 6.55); here every step is rounded to float16 as musicnn does, but a value past the
  float16 range keeps its float32 value instead of becoming inf.
- non-overlapping patches of 187 frames (3 s).
- network (``musicnn.models.build_musicnn``): input batch norm; timbral convs 7x38 and 7x67
  (204 filters each) and temporal convs 128/64/32x1 (51 filters each), each ReLU -> batch norm ->
  max over frequency; mid end of three 7-tap convs (64 filters) with dense + residual
  connections; back end of max and mean pooling over time, batch norm, dense 200 (penultimate,
  after its batch norm) and dense 50 (tag logits). Always inference mode: batch norms use their
  running statistics, dropout is off.

One encoder frame = one patch, 1706 features: mean-pooled 753, max-pooled 753 (the mid-end
features the back end pools: 561 front-end + 3 x 64 mid-end channels) and penultimate 200.

Patching of a clip with L valid samples (its STFT has ``1 + L // 256`` frames): every full 187-frame
patch is used; a trailing partial patch is kept if it holds at least ``MIN_PARTIAL_FRAMES`` frames
(1 s) or if the clip has no full patch at all, and is then *repeat-padded* to 187 frames (its frames
tiled in time, the ``pad_short: repeat-pad`` setting musicnn was trained with); a shorter trailing
remainder is dropped. musicnn itself drops every partial patch (and fails on clips under 3 s).

Does not: the VGG variants (different network), MSD_musicnn_big (not in the wheel), overlapping
patches, training or fine-tuning (the encoder is frozen), resampling (give it 16 kHz audio).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musilingo.encoders.base import Encoder, EncoderOutput
from musilingo.encoders.tf_checkpoint import read_checkpoint
from musilingo.errors import CheckpointError, ConfigError

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # librosa.time_to_frames(3 s) + 1 = floor((48000 - 256) / 256) + 1
PATCH_SAMPLES = PATCH_FRAMES * HOP  # 47872 samples = 2.992 s of new audio per patch
MIN_PARTIAL_FRAMES = math.ceil(SAMPLE_RATE / HOP)  # 63 frames = 1 s: shortest trailing patch kept
FLOAT16_MAX = 65504.0
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization default

VARIANTS = ("MSD_musicnn", "MTT_musicnn")
FEATURES_DIM = 561 + 3 * 64  # 753: front end (2 x 204 + 3 x 51) + three mid-end layers
PENULTIMATE_DIM = 200
NUM_TAGS = 50


# ---------------------------------------------------------------------------------------------
# files in the musicnn wheel
# ---------------------------------------------------------------------------------------------


def musicnn_package_dir() -> Path:
    """Folder of the installed ``musicnn`` package (found without importing it)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "musicnn: the 'musicnn' package is not installed "
            "(pip install --no-deps musicnn==0.1.0; it ships the weights)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def checkpoint_dir(variant: str) -> Path:
    """Folder holding the ``.index`` / ``.data-00000-of-00001`` checkpoint of ``variant``."""
    if variant not in VARIANTS:
        raise ConfigError(f"musicnn variant {variant!r} is not supported; choose one of {VARIANTS}")
    d = musicnn_package_dir() / variant
    if not (d / ".index").is_file():
        raise CheckpointError(f"{d}: no musicnn checkpoint (.index) in this folder")
    return d


@functools.lru_cache(maxsize=None)
def tag_names(variant: str) -> tuple[str, ...]:
    """The 50 tag names of ``variant``, read from musicnn's configuration.py (not executed)."""
    dataset = variant.split("_")[0]  # "MTT" or "MSD"
    path = musicnn_package_dir() / "configuration.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError) as e:
        raise CheckpointError(f"{path}: cannot read musicnn's tag lists ({e})") from e
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == f"{dataset}_LABELS" for t in node.targets
        ):
            labels = tuple(ast.literal_eval(node.value))
            if len(labels) != NUM_TAGS:
                raise CheckpointError(f"{path}: {dataset}_LABELS has {len(labels)} names, not 50")
            return labels
    raise CheckpointError(f"{path}: no {dataset}_LABELS list")


@functools.lru_cache(maxsize=None)
def _checkpoint_sha256(variant: str) -> str:
    d = checkpoint_dir(variant)
    h = hashlib.sha256()
    for name in (".index", ".data-00000-of-00001"):
        h.update((d / name).read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=2)
def _load_weights(variant: str) -> dict[str, np.ndarray]:
    return read_checkpoint(checkpoint_dir(variant))


# ---------------------------------------------------------------------------------------------
# front end
# ---------------------------------------------------------------------------------------------


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    # Slaney's auditory toolbox scale (librosa htk=False): linear below 1 kHz, log above.
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    f = np.asarray(f, dtype=np.float64)
    return np.where(
        f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp
    )


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """[n_mels, 1 + n_fft // 2] float32, equal to ``librosa.filters.mel(sr=, n_fft=, n_mels=)``
    (fmin 0, fmax sr / 2, Slaney scale, Slaney area normalisation)."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


def _reflect_index(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices of ``np.pad(x, pad, mode='reflect')`` for a length-n signal, any n >= 1."""
    i = torch.arange(-pad, n + pad, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = i.remainder(period)
    return torch.where(i >= n, period - i, i)


def _round_f16(x: torch.Tensor) -> torch.Tensor:
    """Round float32 values to the nearest float16, leaving values beyond its range unrounded."""
    return torch.where(x.abs() <= FLOAT16_MAX, x.half().float(), x)


def log_mel(audio: torch.Tensor, mel_basis: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """musicnn's input representation of one clip.

    audio: [L] float32 at 16 kHz, L >= 1; mel_basis: [96, 257]; window: [512] float64 (Hann).
    Returns [1 + L // 256, 96] float32: float16-rounded log10(10000 * mel + 1).
    """
    n = audio.shape[0]
    x = audio.double()[_reflect_index(n, N_FFT // 2, audio.device)]
    spec = torch.stft(x, N_FFT, HOP, window=window, center=False, return_complex=True)
    power = spec.to(torch.complex64).abs() ** 2  # [257, frames]
    mel = (mel_basis @ power).T  # [frames, 96]
    # musicnn: mel.astype(float16); log10(10000 * mel + 1), each numpy step rounding to float16.
    mel = _round_f16(mel)
    y = _round_f16(_round_f16(10000.0 * mel) + 1.0)
    return _round_f16(torch.log10(y))


def num_patches(num_samples: int) -> int:
    """Patches (= encoder frames) for a clip of ``num_samples`` samples (see module docstring)."""
    if num_samples < 1:
        raise ValueError(f"musicnn: a clip needs at least one sample, got {num_samples}")
    frames = 1 + num_samples // HOP
    full, rest = divmod(frames, PATCH_FRAMES)
    return full + int(rest >= MIN_PARTIAL_FRAMES or full == 0)


def cut_patches(spec: torch.Tensor) -> torch.Tensor:
    """[frames, 96] -> [num_patches, 187, 96]: full patches, then the trailing one repeat-padded."""
    frames = spec.shape[0]
    full, rest = divmod(frames, PATCH_FRAMES)
    parts = [spec[: full * PATCH_FRAMES].reshape(full, PATCH_FRAMES, spec.shape[1])]
    if rest >= MIN_PARTIAL_FRAMES or full == 0:
        tail = spec[full * PATCH_FRAMES :]
        idx = torch.arange(PATCH_FRAMES, device=spec.device) % rest
        parts.append(tail[idx][None])
    return torch.cat(parts, dim=0)


# ---------------------------------------------------------------------------------------------
# network
# ---------------------------------------------------------------------------------------------


class MusicnnNet(nn.Module):
    """The musicnn tagger (``build_musicnn`` with 64 mid-end filters and 200 back-end units).

    forward: patches [P, 187, 96] (log-mel) -> (mean_pool [P, 753], max_pool [P, 753],
    penultimate [P, 200], logits [P, 50]). Any number of time frames works (the network is
    convolutional in time with global pooling); it was trained on 187.
    """

    def __init__(self, num_tags: int = NUM_TAGS):
        super().__init__()
        self.bn_input = nn.BatchNorm2d(1, eps=BN_EPS)
        # timbral: kernels span 7 frames x 38 / 67 mel bands (0.4 / 0.7 of 96)
        self.timbral = nn.ModuleList(nn.Conv2d(1, 204, (7, int(f * N_MELS))) for f in (0.4, 0.7))
        self.bn_timbral = nn.ModuleList(nn.BatchNorm2d(204, eps=BN_EPS) for _ in range(2))
        # temporal: kernels span 128 / 64 / 32 frames x 1 band, TF 'same' padding in time
        self.temporal_kernels = (128, 64, 32)
        self.temporal = nn.ModuleList(nn.Conv2d(1, 51, (k, 1)) for k in self.temporal_kernels)
        self.bn_temporal = nn.ModuleList(nn.BatchNorm2d(51, eps=BN_EPS) for _ in range(3))
        # mid end: three 7-tap convs over time, the first adapts 561 -> 64 channels
        self.midend = nn.ModuleList(nn.Conv1d(c, 64, 7) for c in (561, 64, 64))
        self.bn_midend = nn.ModuleList(nn.BatchNorm1d(64, eps=BN_EPS) for _ in range(3))
        # back end
        self.bn_pool = nn.BatchNorm1d(2 * FEATURES_DIM, eps=BN_EPS)
        self.dense = nn.Linear(2 * FEATURES_DIM, PENULTIMATE_DIM)
        self.bn_dense = nn.BatchNorm1d(PENULTIMATE_DIM, eps=BN_EPS)
        self.out = nn.Linear(PENULTIMATE_DIM, num_tags)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.bn_input(x[:, None])  # [P, 1, T, 96]
        front = []
        padded = F.pad(x, (0, 0, 3, 3))  # zero-pad time after the batch norm, as musicnn does
        for conv, bn in zip(self.timbral, self.bn_timbral):
            front.append(bn(F.relu(conv(padded))).amax(dim=3))  # [P, 204, T]
        for k, conv, bn in zip(self.temporal_kernels, self.temporal, self.bn_temporal):
            # TensorFlow 'same': (k - 1) // 2 before, the rest after
            xp = F.pad(x, (0, 0, (k - 1) // 2, k // 2))
            front.append(bn(F.relu(conv(xp))).amax(dim=3))  # [P, 51, T]
        h = torch.cat(front, dim=1)  # [P, 561, T]
        feats = [h]
        for i, (conv, bn) in enumerate(zip(self.midend, self.bn_midend)):
            y = bn(F.relu(conv(F.pad(h, (3, 3)))))
            h = y if i == 0 else y + h  # residual from the second layer on
            feats.append(h)
        fmap = torch.cat(feats, dim=1)  # [P, 753, T]
        max_pool = fmap.amax(dim=2)
        mean_pool = fmap.mean(dim=2)
        # TF concatenates [max, mean] on a trailing axis and flattens: features interleave.
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # [P, 1506]
        penultimate = self.bn_dense(F.relu(self.dense(self.bn_pool(pooled))))
        return mean_pool, max_pool, penultimate, self.out(penultimate)

    @torch.no_grad()
    def load_tf_weights(self, ckpt: dict[str, np.ndarray], source: str = "checkpoint") -> None:
        """Copy weights from musicnn's TF variables (names as tf.compat.v1.layers gives them)."""

        def get(name: str, shape: tuple[int, ...]) -> torch.Tensor:
            if name not in ckpt:
                raise CheckpointError(f"{source}: tensor {name!r} is missing")
            a = ckpt[name]
            if tuple(a.shape) != shape:
                raise CheckpointError(f"{source}: {name!r} has shape {a.shape}, expected {shape}")
            return torch.from_numpy(np.ascontiguousarray(a))

        def bn(mod: nn.Module, i: int) -> None:
            pre = "batch_normalization" + (f"_{i}" if i else "")
            n = mod.num_features
            mod.weight.copy_(get(f"{pre}/gamma", (n,)))
            mod.bias.copy_(get(f"{pre}/beta", (n,)))
            mod.running_mean.copy_(get(f"{pre}/moving_mean", (n,)))
            mod.running_var.copy_(get(f"{pre}/moving_variance", (n,)))

        def conv(mod: nn.Module, i: int) -> None:
            pre = "conv2d" + (f"_{i}" if i else "")
            w = mod.weight
            # TF kernel [kh, kw, in, out]; Conv2d wants [out, in, kh, kw]
            if w.dim() == 4:
                o, c, kh, kw = w.shape
                w.copy_(get(f"{pre}/kernel", (kh, kw, c, o)).permute(3, 2, 0, 1))
            else:  # mid end: TF conv2d [7, channels, 1, 64] == Conv1d [64, channels, 7]
                o, c, k = w.shape
                w.copy_(get(f"{pre}/kernel", (k, c, 1, o))[:, :, 0].permute(2, 1, 0))
            mod.bias.copy_(get(f"{pre}/bias", (mod.out_channels,)))

        def dense(mod: nn.Linear, i: int) -> None:
            pre = "dense" + (f"_{i}" if i else "")
            mod.weight.copy_(get(f"{pre}/kernel", (mod.in_features, mod.out_features)).T)
            mod.bias.copy_(get(f"{pre}/bias", (mod.out_features,)))

        # Creation order in build_musicnn fixes the TF layer numbering.
        bn(self.bn_input, 0)
        convs = [*self.timbral, *self.temporal, *self.midend]
        bns = [*self.bn_timbral, *self.bn_temporal, *self.bn_midend]
        for i, (c, b) in enumerate(zip(convs, bns)):
            conv(c, i)
            bn(b, i + 1)
        bn(self.bn_pool, 9)
        dense(self.dense, 0)
        bn(self.bn_dense, 10)
        dense(self.out, 1)


# ---------------------------------------------------------------------------------------------
# encoder
# ---------------------------------------------------------------------------------------------


class MusicnnEncoder(Encoder):
    """Frozen musicnn features, one 1706-d frame per 3 s patch (see the module docstring).

    ``variant``: "MSD_musicnn" (Million Song Dataset tags) or "MTT_musicnn" (MagnaTagATune tags).
    Weights are read from the installed ``musicnn`` wheel on first use, once per process.
    """

    sample_rate = SAMPLE_RATE
    frame_rate = SAMPLE_RATE / PATCH_SAMPLES  # 0.3342 frames/s: one per 187 x 256 samples
    feature_dim = 2 * FEATURES_DIM + PENULTIMATE_DIM  # 1706 = mean 753 + max 753 + penultimate 200

    def __init__(self, variant: str = "MSD_musicnn", chunk_patches: int = 16):
        super().__init__()
        checkpoint_dir(variant)  # unknown variant -> ConfigError; wheel missing -> CheckpointError
        self.variant = variant
        self.chunk_patches = chunk_patches  # patches per network call: bounds peak memory
        self.net = MusicnnNet().requires_grad_(False).eval()
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank()), persistent=False)
        self.register_buffer(
            "window", torch.hann_window(N_FFT, periodic=True, dtype=torch.float64), persistent=False
        )
        self._loaded = False

    def train(self, mode: bool = True) -> MusicnnEncoder:
        """Frozen: the network stays in inference mode (running batch-norm stats, no dropout)."""
        super().train(mode)
        self.net.eval()
        return self

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.net.load_tf_weights(_load_weights(self.variant), str(checkpoint_dir(self.variant)))
            self._loaded = True

    @property
    def tag_names(self) -> list[str]:
        return list(tag_names(self.variant))

    def num_frames(self, num_samples: int) -> int:
        return num_patches(int(num_samples))

    def cache_key(self) -> dict:
        return {
            "name": "musicnn",
            "variant": self.variant,
            "checkpoint_sha256": _checkpoint_sha256(self.variant),
            "sample_rate": SAMPLE_RATE,
            "n_fft": N_FFT,
            "hop": HOP,
            "n_mels": N_MELS,
            "log": "float16-rounded log10(10000 * mel + 1), no overflow",
            "patch_frames": PATCH_FRAMES,
            "min_partial_frames": MIN_PARTIAL_FRAMES,
            "partial_patch": "repeat-pad",
            "features": "mean_pool753+max_pool753+penultimate200",
        }

    def _clip_patches(self, audio: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """audio [B, S], lengths [B] -> per clip its patches [n_b, 187, 96] (own samples only)."""
        if audio.dim() != 2 or lengths.shape != (audio.shape[0],):
            raise ValueError(
                f"musicnn: expected audio [B, S] and lengths [B], got "
                f"{tuple(audio.shape)} and {tuple(lengths.shape)}"
            )
        audio = audio.to(device=self.mel_basis.device, dtype=torch.float32)
        out = []
        for i, n in enumerate(lengths.tolist()):
            if not 1 <= n <= audio.shape[1]:
                raise ValueError(f"musicnn: clip {i} has length {n}, outside [1, {audio.shape[1]}]")
            out.append(cut_patches(log_mel(audio[i, :n], self.mel_basis, self.window)))
        return out

    @torch.no_grad()
    def _run(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """patches [P, 187, 96] of one clip -> (features [P, 1706], tag probabilities [P, 50]).

        Clips never share a network call, so a clip's numbers do not depend on its batch
        companions (convolution kernels may pick other algorithms for other batch sizes).
        """
        self._ensure_loaded()
        feats, probs = [], []
        for start in range(0, patches.shape[0], self.chunk_patches):
            mean_pool, max_pool, pen, logits = self.net(patches[start : start + self.chunk_patches])
            feats.append(torch.cat([mean_pool, max_pool, pen], dim=1))
            probs.append(torch.sigmoid(logits))
        return torch.cat(feats), torch.cat(probs)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """audio [B, S] float32 at 16 kHz, lengths [B] -> frames [B, T, 1706], mask [B, T].

        Each clip is patched from its own ``lengths[b]`` samples only and run through the network
        on its own, so padding and batch companions never change its frames; T is the largest
        ``num_frames(lengths[b])``, frames past a clip's end are zeros.
        """
        feats = [self._run(p)[0] for p in self._clip_patches(audio, lengths)]
        B, T = len(feats), max(f.shape[0] for f in feats)
        frames = feats[0].new_zeros(B, T, self.feature_dim)
        mask = torch.zeros(B, T, dtype=torch.bool, device=frames.device)
        for b, f in enumerate(feats):
            frames[b, : f.shape[0]] = f
            mask[b, : f.shape[0]] = True
        return EncoderOutput(frames, mask)

    @torch.no_grad()
    def tags(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Clip-level tag probabilities: the mean over patches of the sigmoid outputs (musicnn's
        ``top_tags``). audio [B, S], lengths [B] -> (probs [B, 50], the 50 tag names)."""
        probs = [self._run(p)[1].mean(dim=0) for p in self._clip_patches(audio, lengths)]
        return torch.stack(probs), self.tag_names


@functools.lru_cache(maxsize=len(VARIANTS))
def _tagger(variant: str) -> MusicnnEncoder:
    return MusicnnEncoder(variant)


def tag_probabilities(samples: np.ndarray, variant: str = "MTT_musicnn") -> np.ndarray:
    """Clip-level tag probabilities of one clip: ``samples [S]`` mono float32 at 16 kHz ->
    ``[50]`` float32 in [0, 1], in the order of :func:`tag_names` ``(variant)`` (the mean over
    patches of the sigmoid outputs, as :meth:`MusicnnEncoder.tags`). One frozen encoder per
    variant is built on first use and kept for the process."""
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1))
    probs, _ = _tagger(variant).tags(x, torch.tensor([x.shape[1]]))
    return probs[0].numpy().astype(np.float32)
