"""Shared fixtures: tiny generated audio and the tiny random model (no downloads)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SR = 24000


def tone(seconds: float, sr: int = SR, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A sine tone with a little noise: deterministic, not silent."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture
def wav_factory(tmp_path):
    def make(name: str = "clip.wav", seconds: float = 2.0, sr: int = SR, freq: float = 440.0, **kw):
        path = tmp_path / name
        sf.write(str(path), tone(seconds, sr, freq), sr, **kw)
        return path

    return make


@pytest.fixture(scope="session")
def tiny_model():
    from musilingo.model import MusiLingo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MusiLingo.from_pretrained("tiny", device="cpu")
