"""Audio input: decode any common file to mono float32, resample, and cut long files into windows.

Pure functions only. Decoding goes through libsndfile (``soundfile``: wav, flac, ogg/vorbis, opus,
mp3, aiff, ...) and falls back to the ``ffmpeg`` command for anything else it can decode (m4a/aac,
wma, video containers). Resampling uses soxr (a band-limited resampler, one small wheel; the
project does not depend on torchaudio). Every user mistake raises :class:`~musilingo.errors.AudioError`
naming the file and the problem. This module knows nothing about models.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr

from musilingo.errors import AudioError, AudioTooLongError

WINDOW_S = 30.0  # default window for long files (the paper's clips are <= 30 s)
MIN_WINDOW_S = 1.0  # a trailing remainder shorter than this is merged into the previous window
MAX_DURATION_S = 3 * 3600.0  # default limit on one file: 3 h (= 518,400,000 samples at 48 kHz)
SILENCE_PEAK = 1e-4  # peak amplitude below which a clip is reported as silent (-80 dBFS)
FFMPEG_TIMEOUT_S = 600
# The frame count libsndfile declares for lossy streams is an estimate: for MP3 from the Xing
# header or the bitrate (often thousands of frames off), for Ogg Vorbis / Opus from the last
# granule position (a few to ~100 frames more than decode). Such a file counts as truncated only
# when over 1 % of the declared frames are missing; WAV / FLAC headers are exact.
ESTIMATED_FRAME_FORMATS = ("MP3", "OGG")
ESTIMATED_FRAME_SLACK = 0.01

AUDIO_EXTENSIONS = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".aac", ".wma",
    ".webm", ".mka", ".mp4", ".caf", ".au", ".w64",
)


class SilentAudioWarning(UserWarning):
    """The audio decoded fine but is (nearly) silent."""


@dataclass(frozen=True)
class Window:
    """One analysis window of a long file: its span in seconds and its samples (mono float32)."""

    start_s: float
    end_s: float
    samples: np.ndarray


def _riff_truncation(head: bytes, file_size: int) -> str | None:
    """For a RIFF/WAVE file: a problem string when the data chunk runs past the end of the file.

    libsndfile silently shortens such files to what is there, so the check is done by hand on
    the chunk headers (12-byte RIFF header, then 8-byte chunk headers).
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if cid == b"data":
            have = file_size - (pos + 8)
            if size != 0xFFFFFFFF and size > have:
                return f"truncated: the data chunk declares {size} bytes, the file holds {have}"
            return None
        pos += 8 + size + (size & 1)
    return None


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    with open(path, "rb") as fh:
        problem = _riff_truncation(fh.read(65536), path.stat().st_size)
    if problem:
        raise AudioError(path, problem)
    with sf.SoundFile(str(path)) as f:
        declared = f.frames
        data = f.read(dtype="float32", always_2d=True)
        sr = f.samplerate
        estimated = f.format in ESTIMATED_FRAME_FORMATS
    # libsndfile returns what it could read from a truncated file; a wav/flac header that promises
    # more frames than the file holds is a truncated download or copy.
    if _truncated(declared, len(data), estimated):
        raise AudioError(path, f"truncated: header declares {declared} frames, file holds {len(data)}")
    return data, sr


def _truncated(declared: int, read: int, estimated: bool) -> bool:
    """Whether ``read`` frames fall short of the ``declared`` count (``estimated``: the count
    of a lossy stream, see ESTIMATED_FRAME_SLACK)."""
    if not (declared > 0 and 0 < read < declared and declared < 2**62):
        return False
    return not estimated or read < declared * (1 - ESTIMATED_FRAME_SLACK)


def _decode_ffmpeg(path: Path, sample_rate: int | None) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(path, "format not readable by libsndfile, and ffmpeg is not installed")
    sr = sample_rate or 48000
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1",
           "-ar", str(sr), "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise AudioError(path, f"ffmpeg did not finish decoding within {FFMPEG_TIMEOUT_S} s") from e
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(path, "unreadable (not a known audio format, or corrupt): "
                         + (msg[-1] if msg else f"ffmpeg exit {proc.returncode}"))
    return np.frombuffer(proc.stdout, dtype=np.float32).reshape(-1, 1).copy(), sr


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    max_duration_s: float | None = MAX_DURATION_S,
) -> tuple[np.ndarray, int]:
    """Decode ``path`` to mono float32, resampled to ``sample_rate`` when given.

    Returns ``(samples [S], sample_rate)``. Raises :class:`AudioError` when the file is missing,
    unreadable, truncated, zero-length, holds NaN/inf samples or is longer than
    ``max_duration_s`` (``None`` = no limit). Warns with :class:`SilentAudioWarning` on silence.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    if max_duration_s is not None:
        try:
            info = sf.info(str(path))
            if info.duration > max_duration_s:
                raise AudioTooLongError(path, f"too long: {info.duration:.1f} s exceeds the limit of "
                                 f"{max_duration_s:.0f} s (raise --max-duration to allow it)")
        except (sf.LibsndfileError, RuntimeError):
            pass  # not a libsndfile format: the length is checked after decoding
    try:
        data, sr = _decode_soundfile(path)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError):
        data, sr = _decode_ffmpeg(path, sample_rate)
    return check_samples(path, data, sr, sample_rate, max_duration_s)


def decode_bytes(
    data: bytes,
    name: str = "<upload>",
    sample_rate: int | None = None,
    max_duration_s: float | None = MAX_DURATION_S,
) -> tuple[np.ndarray, int]:
    """Like :func:`load_audio` for in-memory bytes (e.g. an HTTP upload); ``name`` is for errors."""
    if len(data) == 0:
        raise AudioError(name, "empty file (0 bytes)")
    problem = _riff_truncation(data[:65536], len(data))
    if problem:
        raise AudioError(name, problem)
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            arr = f.read(dtype="float32", always_2d=True)
            sr = f.samplerate
            declared = f.frames
            estimated = f.format in ESTIMATED_FRAME_FORMATS
        if _truncated(declared, len(arr), estimated):
            raise AudioError(name, f"truncated: header declares {declared} frames, "
                             f"file holds {len(arr)}")
    except (sf.LibsndfileError, RuntimeError, TypeError):
        import tempfile

        suffix = Path(name).suffix if Path(name).suffix.lower() in AUDIO_EXTENSIONS else ""
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                arr, sr = _decode_ffmpeg(Path(tmp.name), sample_rate)
            except AudioError as e:  # report the upload's name, never the server's temp path
                raise AudioError(name, e.problem.replace(tmp.name, name)) from None
    return check_samples(name, arr, sr, sample_rate, max_duration_s)


def check_samples(path: str | os.PathLike, data: np.ndarray, sr: int, sample_rate: int | None = None,
                  max_duration_s: float | None = MAX_DURATION_S) -> tuple[np.ndarray, int]:
    """Validate decoded samples ([S] or [S, channels]) named ``path`` in errors: non-empty,
    finite, not too long; mix to mono float32, warn on silence, resample to ``sample_rate``."""
    data = np.asarray(data, dtype=np.float32)
    if data.size == 0 or len(data) == 0:
        raise AudioError(path, "zero-length audio (no samples)")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or infinite samples")
    duration = len(data) / sr
    if max_duration_s is not None and duration > max_duration_s:
        raise AudioTooLongError(path, f"too long: {duration:.1f} s exceeds the limit of "
                         f"{max_duration_s:.0f} s (raise --max-duration to allow it)")
    mono = data.mean(axis=1) if data.ndim == 2 else data
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if float(np.abs(mono).max()) < SILENCE_PEAK:
        warnings.warn(f"{path}: audio is silent (peak below {SILENCE_PEAK:g})",
                      SilentAudioWarning, stacklevel=3)
    if sample_rate is not None and sr != sample_rate:
        mono = resample(mono, sr, sample_rate)
        sr = sample_rate
    return mono, sr


def resample(samples: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of mono float32 ``samples [S]`` with soxr (high quality)."""
    if sr_in == sr_out:
        return samples
    return soxr.resample(samples, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def normalize_loudness(samples: np.ndarray, sample_rate: int, target_lufs: float,
                       max_gain_db: float = 40.0) -> np.ndarray:
    """Scale a clip to ``target_lufs`` integrated loudness (ITU-R BS.1770-4, via pyloudnorm).

    Encoders like musicnn log-compress magnitudes, so their features shift with playback level;
    normalising every clip (training corpus and user files alike) removes that difference.
    Silent or near-silent clips (below -70 LUFS, the BS.1770 absolute gate) and clips shorter
    than one 400 ms gating block are returned unchanged; the gain is capped at +-``max_gain_db``.
    The result may exceed [-1, 1]: it feeds an encoder, not a sound card.
    """
    if len(samples) < int(0.4 * sample_rate) + 1:
        return samples
    loudness = pyloudnorm.Meter(sample_rate).integrated_loudness(np.asarray(samples, dtype=np.float64))
    if not np.isfinite(loudness) or loudness < -70.0:
        return samples
    gain_db = float(np.clip(target_lufs - loudness, -max_gain_db, max_gain_db))
    return (samples * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32, copy=False)


def split_windows(samples: np.ndarray, sample_rate: int, window_s: float = WINDOW_S) -> list[Window]:
    """Cut ``samples [S]`` into consecutive windows of ``window_s`` seconds.

    The last window holds the remainder; a remainder shorter than ``MIN_WINDOW_S`` is merged into
    the window before it, so no window is a useless sliver. A clip shorter than one window gives
    one window.
    """
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    win = int(round(window_s * sample_rate))
    n = len(samples)
    count = max(1, math.ceil(n / win))
    if count > 1 and n - (count - 1) * win < MIN_WINDOW_S * sample_rate:
        count -= 1
    out = []
    for i in range(count):
        start = i * win
        end = n if i == count - 1 else start + win
        out.append(Window(start / sample_rate, end / sample_rate, samples[start:end]))
    return out


def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """All audio files under ``root`` (recursively), by extension, sorted."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
