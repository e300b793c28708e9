"""MIDI -> audio with the ``fluidsynth`` CLI at the corpus sample rate.

What it does: runs fluidsynth on a MIDI file with a soundfont under the clip's deadline and reads
the written audio back as mono float32.

What it does not: choose the soundfont or the window (:mod:`.plan`, :mod:`.clip`), check the
audio, or retry (:mod:`.pool`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from musilingo.data.render.timeouts import _run

SAMPLE_RATE = 24_000  # Hz, mono; what fluidsynth is asked for (-r) and what clips are stored at
FLUIDSYNTH_GAIN = 0.6  # fluidsynth -g; 0.6 keeps dense MMA grooves from clipping
FLUIDSYNTH_BIN = "fluidsynth"


def _render_wav(midi_path: Path, wav_path: Path, soundfont: str, deadline: float) -> np.ndarray:
    import soundfile as sf

    cmd = [FLUIDSYNTH_BIN, "-ni", "-F", str(wav_path), "-r", str(SAMPLE_RATE),
           "-g", str(FLUIDSYNTH_GAIN), soundfont, str(midi_path)]
    _run(cmd, deadline - time.monotonic())
    if not wav_path.is_file():
        raise ValueError("fluidsynth wrote no audio")
    audio, sr = sf.read(str(wav_path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"fluidsynth wrote {sr} Hz, expected {SAMPLE_RATE}")
    return audio.mean(axis=1)
