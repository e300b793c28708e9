import subprocess
import shutil

import numpy as np
import pytest
import soundfile as sf

from musilingo.audio import (SilentAudioWarning, decode_bytes, load_audio, normalize_loudness, resample,
                             split_windows)
from musilingo.errors import AudioError

from conftest import SR, tone


@pytest.mark.parametrize("ext,kw", [
    (".wav", {}), (".flac", {}), (".ogg", {"format": "OGG", "subtype": "VORBIS"}),
    (".opus", {"format": "OGG", "subtype": "OPUS"}), (".mp3", {"format": "MP3"}),
])
def test_formats_decode_to_mono_at_target_rate(tmp_path, ext, kw):
    sr = 48000 if ext == ".opus" else 44100
    x = np.stack([tone(1.5, sr), tone(1.5, sr, 220)], axis=1)  # stereo
    p = tmp_path / f"a{ext}"
    sf.write(str(p), x, sr, **kw)
    y, out_sr = load_audio(p, 24000)
    assert out_sr == 24000 and y.ndim == 1 and y.dtype == np.float32
    assert abs(len(y) - 1.5 * 24000) < 0.05 * 24000


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_ffmpeg_fallback_for_m4a(tmp_path, wav_factory):
    src = wav_factory(seconds=1.0)
    m4a = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), str(m4a)], check=True)
    y, sr = load_audio(m4a, 16000)
    assert sr == 16000 and abs(len(y) - 16000) < 2000


def test_resample_keeps_a_tone():
    x = tone(1.0, 44100, 1000.0)
    y = resample(x, 44100, 16000)
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / len(y) - 1000.0) < 2.0


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file") as e:
        load_audio(tmp_path / "nope.wav")
    assert "nope.wav" in str(e.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        load_audio(p)


def test_garbage_file(tmp_path):
    p = tmp_path / "garbage.mp3"
    p.write_bytes(b"this is not audio at all" * 50)
    with pytest.raises(AudioError, match="garbage.mp3: unreadable"):
        load_audio(p)


def test_truncated_wav(tmp_path, wav_factory):
    p = wav_factory(seconds=2.0)
    data = p.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(cut)


def test_zero_length_wav(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(str(p), np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="zero-length"):
        load_audio(p)


def test_nan_samples(tmp_path):
    x = tone(1.0)
    x[100] = np.nan
    p = tmp_path / "nan.wav"
    sf.write(str(p), x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(p)


def test_too_long(wav_factory):
    p = wav_factory(seconds=3.0)
    with pytest.raises(AudioError, match="too long"):
        load_audio(p, max_duration_s=2.0)


def test_silence_warns(tmp_path):
    p = tmp_path / "silent.wav"
    sf.write(str(p), np.zeros(SR, dtype=np.float32), SR)
    with pytest.warns(SilentAudioWarning, match="silent"):
        load_audio(p)


def test_directory_is_an_error(tmp_path):
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path)


def test_decode_bytes_and_errors(wav_factory):
    data = wav_factory(seconds=1.0).read_bytes()
    y, sr = decode_bytes(data, "up.wav", 16000)
    assert sr == 16000 and abs(len(y) - 16000) < 10
    with pytest.raises(AudioError, match="up.wav: empty"):
        decode_bytes(b"", "up.wav")
    with pytest.raises(AudioError, match="junk.bin"):
        decode_bytes(b"\x00\x01junk" * 100, "junk.bin")


def test_windows():
    x = np.zeros(int(65.5 * 100), dtype=np.float32)
    w = split_windows(x, 100, 30.0)
    assert [(a.start_s, a.end_s) for a in w] == [(0.0, 30.0), (30.0, 60.0), (60.0, 65.5)]
    # a remainder under 1 s is merged into the previous window
    w = split_windows(np.zeros(6050, dtype=np.float32), 100, 30.0)
    assert [(a.start_s, a.end_s) for a in w] == [(0.0, 30.0), (30.0, 60.5)]
    assert len(split_windows(np.zeros(500, dtype=np.float32), 100, 30.0)) == 1


def test_normalize_loudness():
    import pyloudnorm

    meter = pyloudnorm.Meter(SR)
    for gain in (0.02, 0.3, 1.5):
        x = (tone(3, SR) * gain).astype(np.float32)
        y = normalize_loudness(x, SR, -23.0)
        assert y.dtype == np.float32
        assert meter.integrated_loudness(y.astype(np.float64)) == pytest.approx(-23.0, abs=0.05)
        np.testing.assert_allclose(y / np.abs(y).max(), x / np.abs(x).max(), atol=1e-6)  # a pure gain
    silent = np.zeros(SR * 2, dtype=np.float32)
    assert normalize_loudness(silent, SR, -23.0) is silent  # nothing to measure: unchanged
    short = tone(0.2, SR)
    assert normalize_loudness(short, SR, -23.0) is short  # shorter than one 400 ms gating block
    quiet = (tone(3, SR) * 1e-4).astype(np.float32)  # -86 LUFS: below the absolute gate
    assert normalize_loudness(quiet, SR, -23.0) is quiet
