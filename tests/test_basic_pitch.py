"""BasicPitchEncoder: parity with basic-pitch's own windowing, pitch sanity, padding invariance.

Needs the ``basic-pitch`` wheel (for its ONNX file) and onnxruntime; skipped without them.
Audio is synthesised; nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from musilingo.errors import ConfigError

pytest.importorskip("onnxruntime")
bp = pytest.importorskip("musilingo.encoders.basic_pitch")
try:
    bp.find_onnx_model()
except Exception as e:  # noqa: BLE001 - any reason the model is missing means skip
    pytest.skip(f"basic-pitch model not available: {e}", allow_module_level=True)

SR = 22050


def tone(freq: float, seconds: float, amp: float = 0.5, start_s: float = 0.0) -> np.ndarray:
    n = round(seconds * SR)
    t = np.arange(n) / SR
    x = amp * np.sin(2 * np.pi * freq * t)
    x[t < start_s] = 0.0
    return x.astype(np.float32)


def mixture(seconds: float, seed: int = 0) -> np.ndarray:
    """A few tones plus a little noise: a non-trivial test signal."""
    rng = np.random.default_rng(seed)
    x = tone(220.0, seconds, 0.3) + tone(330.0, seconds, 0.2, start_s=seconds / 3)
    x += tone(523.25, seconds, 0.2, start_s=2 * seconds / 3)
    return (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)


def upstream_run_inference(session, audio_original: np.ndarray) -> dict[str, np.ndarray]:
    """Transcription of basic_pitch.inference.run_inference (0.4.0) after librosa.load, with the
    same ONNX model, one window per call as upstream does."""
    audio_n_samples = SR * 2 - 256  # constants.AUDIO_N_SAMPLES
    n_overlapping_frames = 30
    overlap_len = n_overlapping_frames * 256
    hop_size = audio_n_samples - overlap_len
    original_length = audio_original.shape[0]
    audio = np.concatenate([np.zeros((overlap_len // 2,), dtype=np.float32), audio_original])
    output = {"note": [], "onset": [], "contour": []}
    for i in range(0, audio.shape[0], hop_size):  # window_audio_file
        window = audio[i : i + audio_n_samples]
        if len(window) < audio_n_samples:
            window = np.pad(window, pad_width=[[0, audio_n_samples - len(window)]])
        x = window[None, :, None]
        names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2",
                 "StatefulPartitionedCall:0"]
        for k, v in zip(["note", "onset", "contour"],
                        session.run(names, {"serving_default_input_2:0": x})):
            output[k].append(v)

    def unwrap_output(out):  # unwrap_output
        n_olap = int(0.5 * n_overlapping_frames)
        out = out[:, n_olap:-n_olap, :]
        n_frames = int(np.floor(original_length * (86 / SR)))  # ANNOTATIONS_FPS = 22050 // 256
        return out.reshape(out.shape[0] * out.shape[1], out.shape[2])[:n_frames, :]

    return {k: unwrap_output(np.concatenate(v)) for k, v in output.items()}


@pytest.fixture(scope="module")
def enc():
    return bp.BasicPitchEncoder(num_threads=2)


def test_attributes(enc):
    assert enc.sample_rate == 22050
    assert enc.feature_dim == 440 == bp.N_NOTE + bp.N_ONSET + bp.N_CONTOUR
    assert enc.frame_rate == pytest.approx(86.1328125)
    assert bp.WINDOW_SAMPLES == 43844 and bp.HOP_SAMPLES == 36164


def test_matches_upstream_windowing(enc):
    x = mixture(5.0)  # 4 windows: stitching across window boundaries is exercised
    ref = upstream_run_inference(enc._get_session(), x)
    ours = enc.posteriorgrams(x)
    n_expected = math.floor(len(x) * 86 / SR)
    assert n_expected == enc.num_frames(len(x)) == 430
    for k, width in [("note", 88), ("onset", 88), ("contour", 264)]:
        assert ours[k].shape == ref[k].shape == (n_expected, width)
        np.testing.assert_allclose(ours[k], ref[k], rtol=0, atol=1e-6)
        assert ours[k].min() >= 0.0 and ours[k].max() <= 1.0


def test_a4_lights_note_69(enc):
    x = tone(440.0, 3.0)
    out = enc.encode([torch.from_numpy(x)])
    frames = out.frames[0, 20:-20].numpy()  # skip the edges
    note = frames[:, : bp.N_NOTE].mean(axis=0)
    assert int(note.argmax()) + bp.LOWEST_MIDI == 69
    assert note[69 - bp.LOWEST_MIDI] > 0.4
    assert np.delete(note, 69 - bp.LOWEST_MIDI).max() < 0.5 * note[69 - bp.LOWEST_MIDI]
    contour = frames[:, bp.N_NOTE + bp.N_ONSET :].mean(axis=0)
    assert int(contour.argmax()) == 3 * (69 - bp.LOWEST_MIDI) + 1  # centre bin of the key


def test_padded_batch_equals_one_by_one(enc):
    clips = [mixture(4.0, seed=1), tone(440.0, 0.7), mixture(2.2, seed=2)[::-1].copy()]
    batch = enc.encode([torch.from_numpy(c) for c in clips])
    counts = [enc.num_frames(len(c)) for c in clips]
    assert batch.frames.shape == (3, max(counts), 440)
    assert batch.mask.sum(dim=1).tolist() == counts
    for b, c in enumerate(clips):
        alone = enc(torch.from_numpy(c)[None], torch.tensor([len(c)]))
        assert alone.frames.shape[1] == counts[b] and bool(alone.mask.all())
        torch.testing.assert_close(batch.frames[b, : counts[b]], alone.frames[0], rtol=0, atol=1e-6)
        assert float(batch.frames[b, counts[b] :].abs().sum()) == 0.0
        assert not bool(batch.mask[b, counts[b] :].any())


def test_num_frames_and_short_clips(enc):
    lengths = [0, 100, 256, 257, 300, 22050, 36164 + 7000]
    out = enc(torch.zeros(len(lengths), max(lengths)), torch.tensor(lengths))
    expected = [n * 86 // SR for n in lengths]
    assert [enc.num_frames(n) for n in lengths] == expected
    assert out.mask.sum(dim=1).tolist() == expected
    assert out.frames.shape == (len(lengths), max(expected), 440)


def test_aligned_stitching_keeps_onsets_on_the_grid(enc):
    aligned = bp.BasicPitchEncoder(num_threads=2, stitching="aligned")
    x = np.zeros(12 * SR, dtype=np.float32)
    x[10 * SR :] = tone(440.0, 2.0)
    assert aligned.num_frames(len(x)) == math.ceil(len(x) / 256)
    onset = aligned.posteriorgrams(x)["onset"][:, 69 - bp.LOWEST_MIDI]
    assert abs(int(onset.argmax()) - 10 * SR / 256) <= 1.5
    # upstream stitching drifts by 188 samples per window: ~6 windows before 10 s -> ~4 frames
    drifted = enc.posteriorgrams(x)["onset"][:, 69 - bp.LOWEST_MIDI]
    assert int(drifted.argmax()) - 10 * SR / 256 > 2


def test_cache_key(enc):
    key = enc.cache_key()
    json.dumps(key)
    assert key["name"] == "basic_pitch" and len(key["model_sha256"]) == 64
    assert key != bp.BasicPitchEncoder(stitching="aligned").cache_key()
    assert key == bp.BasicPitchEncoder(num_threads=1, window_batch=3).cache_key()


def test_invalid_settings():
    with pytest.raises(ConfigError):
        bp.BasicPitchEncoder(stitching="nope")
    with pytest.raises(ConfigError):
        bp.BasicPitchEncoder(window_batch=0)
    with pytest.raises(ConfigError):
        bp.BasicPitchEncoder(model_path="/nonexistent/nmp.onnx")


def test_does_not_import_basic_pitch_or_tensorflow():
    code = textwrap.dedent("""
        import sys, numpy as np
        from musilingo.encoders.basic_pitch import BasicPitchEncoder
        BasicPitchEncoder(num_threads=1).posteriorgrams(np.zeros(5000, np.float32))
        bad = [m for m in sys.modules if m.split('.')[0] in ('basic_pitch', 'tensorflow')]
        assert not bad, bad
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_alone_it_pools_to_3_s_tokens():
    # at pool_window 1 a 30 s clip would be 2,584 audio tokens (86 frames/s)
    from musilingo.config import default_pool_window, encoder_config_from_spec
    from musilingo.encoders.basic_pitch import FRAME_RATE

    w = default_pool_window(encoder_config_from_spec("basic-pitch"))
    assert abs(w / FRAME_RATE - 3.0) < 0.01
    assert default_pool_window(encoder_config_from_spec("musicnn+basic-pitch")) == 1


def test_transposed_features_approximate_the_transposed_music(enc):
    # a chord (A3 C#4 E4) and the same chord three semitones higher, encoded for real: moving the
    # first one's bins by 3 gives nearly the second's (what key_transpose training relies on)
    def chord(shift):
        x = sum(tone(f * 2 ** (shift / 12), 3.0, 0.25) for f in (220.0, 277.18, 329.63))
        return enc.encode([torch.from_numpy(x.astype(np.float32))]).frames[0, 20:-20].mean(dim=0)

    low, high = chord(0), chord(3)
    moved = bp.transpose_features(low, 3)
    def dist(a, b, part=slice(None)):
        return float((a[part] - b[part]).abs().sum())

    assert dist(moved, high) < 0.45 * dist(low, high)  # measured 0.34
    notes = slice(0, bp.N_NOTE)
    assert dist(moved, high, notes) < 0.2 * dist(low, high, notes)  # measured 0.12
    note = moved[: bp.N_NOTE]
    assert sorted((torch.topk(note, 3).indices + bp.LOWEST_MIDI).tolist()) == [60, 64, 67]  # C4 E4 G4
    back = bp.transpose_features(moved, -3)
    torch.testing.assert_close(back[3:85], low[3:85])  # notes away from the ends come back unchanged


def test_transpose_features_moves_only_basic_pitch_bins():
    x = torch.zeros(2, 10 + bp.FEATURE_DIM)
    x[:, :10] = 7.0  # another encoder's features before Basic Pitch's
    x[:, 10 + 40] = 1.0  # note bin 40
    x[:, 10 + bp.N_NOTE + 87] = 1.0  # onset bin 87: moved off the top end
    x[:, 10 + bp.N_NOTE + bp.N_ONSET + 3 * 40 + 1] = 1.0  # contour centre of key 40
    x[:, 10 + bp.N_NOTE + bp.N_ONSET] = 0.5  # the contour's lowest bin: fills the freed ones
    y = bp.transpose_features(x, 2, offset=10)
    assert torch.equal(y[:, :10], x[:, :10])
    nz = set(torch.nonzero(y[0, 10:]).flatten().tolist())
    c = bp.N_NOTE + bp.N_ONSET
    assert nz == {42, c + 3 * 42 + 1, *range(c, c + 7)}
    assert torch.equal(y[0, 10 + c: 10 + c + 7], torch.full((7,), 0.5))
    assert torch.equal(bp.transpose_features(x, 0, offset=10), x)
    with pytest.raises(ValueError, match="do not fit"):
        bp.transpose_features(x, 1, offset=20)
    with pytest.raises(ValueError, match="octave"):
        bp.transpose_features(x, 13, offset=10)


def test_feature_offsets_find_basic_pitch_in_a_composite(enc):
    from musilingo.encoders.composite import CompositeEncoder

    assert bp.feature_offsets(enc) == [0]
    assert bp.feature_offsets(CompositeEncoder([enc, enc])) == [0, bp.FEATURE_DIM]
