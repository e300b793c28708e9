"""musicnn encoder: the TF checkpoint reader on the real wheel, the front end against musicnn's
numpy recipe, patching arithmetic, padding invariance, and tags on two rendered clips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("musicnn.configuration")  # the wheel with the weights (installed --no-deps)

from musilingo.encoders.musicnn import (  # noqa: E402
    MIN_PARTIAL_FRAMES,
    PATCH_FRAMES,
    MusicnnEncoder,
    checkpoint_dir,
    cut_patches,
    log_mel,
    mel_filterbank,
    tag_names,
)
from musilingo.encoders.tf_checkpoint import read_checkpoint, read_index  # noqa: E402
from musilingo.errors import CheckpointError, ConfigError  # noqa: E402

SR = 16000
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

EXPECTED_SHAPES = {
    "batch_normalization/moving_mean": (1,),
    "conv2d/kernel": (7, 38, 1, 204),
    "conv2d_1/kernel": (7, 67, 1, 204),
    "conv2d_2/kernel": (128, 1, 1, 51),
    "conv2d_3/kernel": (64, 1, 1, 51),
    "conv2d_4/kernel": (32, 1, 1, 51),
    "conv2d_5/kernel": (7, 561, 1, 64),
    "conv2d_6/kernel": (7, 64, 1, 64),
    "conv2d_7/kernel": (7, 64, 1, 64),
    "batch_normalization_9/moving_variance": (1506,),
    "dense/kernel": (1506, 200),
    "dense/bias": (200,),
    "batch_normalization_10/gamma": (200,),
    "dense_1/kernel": (200, 50),
    "dense_1/bias": (50,),
    "beta1_power": (),
}


@pytest.fixture(scope="module")
def mtt() -> MusicnnEncoder:
    return MusicnnEncoder("MTT_musicnn")


@pytest.fixture(scope="module")
def msd() -> MusicnnEncoder:
    return MusicnnEncoder("MSD_musicnn")


# --- checkpoint reader ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["MSD_musicnn", "MTT_musicnn"])
def test_reader_on_wheel(variant):
    ckpt = read_checkpoint(checkpoint_dir(variant))
    assert len(ckpt) == 150  # 50 model variables + 2 Adam slots each + beta1/beta2 powers
    for name, shape in EXPECTED_SHAPES.items():
        assert ckpt[name].shape == shape, name
        assert ckpt[name].dtype == np.float32
    assert "conv2d/kernel/Adam_1" in ckpt
    assert all(np.isfinite(a).all() for a in ckpt.values())
    var = ckpt["batch_normalization_10/moving_variance"]
    assert (var > 0).all()
    assert 0.01 < float(np.abs(ckpt["dense_1/kernel"]).mean()) < 1


def test_reader_variants_differ():
    a = read_checkpoint(checkpoint_dir("MSD_musicnn"))["dense_1/kernel"]
    b = read_checkpoint(checkpoint_dir("MTT_musicnn"))["dense_1/kernel"]
    assert not np.allclose(a, b)


def _copy_ckpt(tmp_path: Path) -> Path:
    src = checkpoint_dir("MTT_musicnn")
    for name in (".index", ".data-00000-of-00001"):
        shutil.copy(src / name, tmp_path / f"model{name}")
    return tmp_path / "model"


def test_reader_prefix_forms(tmp_path):
    prefix = _copy_ckpt(tmp_path)
    a = read_checkpoint(prefix)
    b = read_checkpoint(str(prefix) + ".index")
    assert a.keys() == b.keys() and np.array_equal(a["dense/kernel"], b["dense/kernel"])


@pytest.mark.parametrize(
    "damage",
    ["truncate_index", "bad_magic", "flip_index_byte", "empty_index", "truncate_data", "no_data"],
)
def test_reader_malformed(tmp_path, damage):
    prefix = _copy_ckpt(tmp_path)
    index = Path(str(prefix) + ".index")
    data = Path(str(prefix) + ".data-00000-of-00001")
    raw = bytearray(index.read_bytes())
    if damage == "truncate_index":
        index.write_bytes(raw[:-20])
    elif damage == "bad_magic":
        raw[-1] ^= 0xFF
        index.write_bytes(raw)
    elif damage == "flip_index_byte":
        raw[40] ^= 0x55  # inside the first data block: its checksum no longer matches
        index.write_bytes(raw)
    elif damage == "empty_index":
        index.write_bytes(b"")
    elif damage == "truncate_data":
        data.write_bytes(data.read_bytes()[:1000])
    elif damage == "no_data":
        data.unlink()
    with pytest.raises(CheckpointError, match="model"):
        read_checkpoint(prefix)


def test_reader_missing(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        read_index(tmp_path / "nothing")


# --- front end --------------------------------------------------------------------------------


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=96)
    np.testing.assert_allclose(mel_filterbank(), ref, rtol=0, atol=1e-7)


def test_log_mel_matches_musicnn_recipe(mtt):
    """musicnn.extractor.batch_data with librosa 0.7 (reflect padding), float16 numpy steps."""
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    y = (0.2 * rng.standard_normal(2 * SR + 123)).astype(np.float32)
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, hop_length=256, n_fft=512, n_mels=96, pad_mode="reflect"
    ).T
    ref = np.log10(10000 * mel.astype(np.float16) + 1).astype(np.float32)
    ours = log_mel(torch.from_numpy(y), mtt.mel_basis, mtt.window).numpy()
    assert ours.shape == ref.shape == (1 + len(y) // 256, 96)
    diff = np.abs(ours - ref)
    assert diff.max() <= 2**-8  # at most one float16 step (rounding ties) at these magnitudes
    assert (diff > 0).mean() < 0.01


def test_log_mel_no_overflow(mtt):
    t = torch.arange(SR) / SR
    loud = torch.sin(2 * torch.pi * 440 * t).float()  # full-scale: musicnn's float16 gives inf
    out = log_mel(loud, mtt.mel_basis, mtt.window)
    assert torch.isfinite(out).all() and out.max() > 4.8  # log10(65504) = 4.82


def test_cut_patches_repeat_pads_tail():
    spec = torch.arange(PATCH_FRAMES + 70, dtype=torch.float32)[:, None].repeat(1, 96)
    p = cut_patches(spec)
    assert p.shape == (2, PATCH_FRAMES, 96)
    assert torch.equal(p[1, :70], spec[PATCH_FRAMES:])
    assert torch.equal(p[1, 70:140], spec[PATCH_FRAMES:])  # tiled, not zero-padded


# --- frames -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_samples,expected",
    [
        (1, 1),  # shorter than a patch: the only patch, repeat-padded
        (SR, 1),
        (186 * 256, 1),  # 187 STFT frames: exactly one patch
        (186 * 256 - 1, 1),
        ((187 + MIN_PARTIAL_FRAMES - 2) * 256, 1),  # tail of 62 frames (< 1 s): dropped
        ((187 + MIN_PARTIAL_FRAMES - 1) * 256, 2),  # tail of 63 frames: kept
        (30 * SR, 10),  # 1876 frames = 10 x 187 + 6
        (60 * SR, 20),  # 3751 frames = 20 x 187 + 11
    ],
)
def test_num_frames(mtt, num_samples, expected):
    assert mtt.num_frames(num_samples) == expected


def test_num_frames_rejects_empty(mtt):
    with pytest.raises(ValueError):
        mtt.num_frames(0)


def test_attributes(mtt):
    assert mtt.sample_rate == 16000
    assert mtt.feature_dim == 1706
    assert mtt.frame_rate == pytest.approx(16000 / (256 * 187))


def test_padded_batch_equals_one_by_one(mtt):
    g = torch.Generator().manual_seed(0)
    lengths = [900, 2 * SR, 4 * SR + 1234, 5 * SR]
    clips = [0.1 * torch.randn(n, generator=g) for n in lengths]
    batch = mtt.encode(clips)
    T = max(mtt.num_frames(n) for n in lengths)
    assert batch.frames.shape == (4, T, 1706) and batch.mask.shape == (4, T)
    for i, clip in enumerate(clips):
        n = mtt.num_frames(len(clip))
        assert batch.mask[i].tolist() == [True] * n + [False] * (T - n)
        alone = mtt.encode([clip])
        assert alone.frames.shape == (1, n, 1706)
        torch.testing.assert_close(batch.frames[i, :n], alone.frames[0], rtol=0, atol=0)
        assert (batch.frames[i, n:] == 0).all()
    assert torch.isfinite(batch.frames).all()
    # junk in the padding changes nothing
    audio = torch.randn(2, 5 * SR, generator=g)
    audio[0, : 2 * SR] = clips[1]
    out = mtt(audio, torch.tensor([2 * SR, 5 * SR]))
    torch.testing.assert_close(out.frames[0, :1], batch.frames[1, :1], rtol=0, atol=0)


# Clip-level tag probabilities from real TensorFlow 2.21 (tensorflow-cpu + tf-keras, legacy
# keras) running musicnn's own graph, checkpoint and front end (librosa, reflect padding) on the
# noise clip below: (tag index, probability) of the 8 highest tags.
TF_GOLDEN = {
    "MTT_musicnn": [(8, 0.257699), (3, 0.215737), (23, 0.087192), (6, 0.063304), (22, 0.055572),
                    (21, 0.051369), (7, 0.049028), (1, 0.045685)],
    "MSD_musicnn": [(4, 0.19745), (6, 0.143334), (0, 0.075621), (11, 0.061363), (27, 0.056675),
                    (43, 0.047407), (48, 0.047081), (18, 0.045229)],
}


@pytest.mark.parametrize("variant", ["MTT_musicnn", "MSD_musicnn"])
def test_tags_match_tensorflow(variant, mtt, msd):
    enc = {"MTT_musicnn": mtt, "MSD_musicnn": msd}[variant]
    rng = np.random.default_rng(1)
    noise = (0.05 * rng.standard_normal(10 * SR)).astype(np.float32)[: 3 * 187 * 256 - 1]
    assert enc.num_frames(len(noise)) == 3  # three full patches, as musicnn would cut them
    probs, _ = enc.tags(torch.from_numpy(noise)[None], torch.tensor([len(noise)]))
    order = probs[0].argsort(descending=True)[:8].tolist()
    assert order == [i for i, _ in TF_GOLDEN[variant]]
    for i, p in TF_GOLDEN[variant]:
        assert float(probs[0, i]) == pytest.approx(p, abs=2e-5)


def test_frozen_and_inference_mode(mtt):
    mtt.train()
    assert not mtt.net.training and not any(p.requires_grad for p in mtt.parameters())
    mtt.eval()


def test_bad_variant_and_lengths(mtt):
    with pytest.raises(ConfigError):
        MusicnnEncoder("MSD_vgg")
    with pytest.raises(ValueError):
        mtt(torch.zeros(1, 100), torch.tensor([101]))


def test_cache_key(mtt, msd):
    k = mtt.cache_key()
    assert k["name"] == "musicnn" and k["variant"] == "MTT_musicnn"
    assert len(k["checkpoint_sha256"]) == 64 and k["sample_rate"] == 16000
    assert k["n_fft"] == 512 and k["hop"] == 256 and k["n_mels"] == 96
    assert msd.cache_key()["checkpoint_sha256"] != k["checkpoint_sha256"]
    assert MusicnnEncoder("MTT_musicnn").cache_key() == k


def test_tag_names():
    mtt_tags, msd_tags = tag_names("MTT_musicnn"), tag_names("MSD_musicnn")
    assert len(mtt_tags) == len(msd_tags) == 50
    assert mtt_tags[9] == "piano" and "drums" in mtt_tags
    assert msd_tags[0] == "rock" and "jazz" in msd_tags


# --- tags on rendered audio -------------------------------------------------------------------


def _render(pm, tmp: Path) -> torch.Tensor:
    sf = pytest.importorskip("soundfile")
    mid, wav = tmp / "clip.mid", tmp / "clip.wav"
    pm.write(str(mid))
    cmd = ["fluidsynth", "-ni", "-q", "-g", "0.8", "-r", str(SR), "-F", str(wav)]
    cmd += [str(SOUNDFONT), str(mid)]
    subprocess.run(cmd, check=True, timeout=60, capture_output=True)
    y, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    assert sr == SR
    return torch.from_numpy(y.mean(axis=1))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, torch.Tensor]:
    pretty_midi = pytest.importorskip("pretty_midi")
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        pytest.skip("needs the fluidsynth command and the FluidR3_GM soundfont")
    tmp = tmp_path_factory.mktemp("render")
    piano = pretty_midi.PrettyMIDI(initial_tempo=90)
    ins = pretty_midi.Instrument(program=0)  # Acoustic Grand Piano
    for i, p in enumerate([60, 64, 67, 72, 67, 64, 62, 65, 69, 74, 69, 65]):
        t = 0.5 * i
        ins.notes.append(pretty_midi.Note(80, p, t, t + 0.6))
        ins.notes.append(pretty_midi.Note(60, p - (24 if i % 4 == 0 else 12), t, t + 0.6))
    piano.instruments.append(ins)
    drums = pretty_midi.PrettyMIDI(initial_tempo=120)
    kit = pretty_midi.Instrument(program=0, is_drum=True)
    for k in range(48):  # 6 s of eighth-note hi-hat, kick on 1 and 3, snare on 2 and 4
        t = 0.125 * k
        kit.notes.append(pretty_midi.Note(90, 42, t, t + 0.1))
        if k % 4 == 0:
            kit.notes.append(pretty_midi.Note(110, 36, t, t + 0.1))
        if k % 8 == 4:
            kit.notes.append(pretty_midi.Note(110, 38, t, t + 0.1))
    drums.instruments.append(kit)
    return {"piano": _render(piano, tmp), "drums": _render(drums, tmp)}


def test_tags_piano_and_drums(mtt, clips):
    audio = torch.nn.utils.rnn.pad_sequence([clips["piano"], clips["drums"]], batch_first=True)
    lengths = torch.tensor([len(clips["piano"]), len(clips["drums"])])
    probs, names = mtt.tags(audio, lengths)
    assert probs.shape == (2, 50) and names == list(tag_names("MTT_musicnn"))
    assert ((probs > 0) & (probs < 1)).all()
    rank = {c: [names[i] for i in probs[b].argsort(descending=True)] for b, c in enumerate(clips)}
    assert "piano" in rank["piano"][:3]
    assert "drums" in rank["drums"][:3]
    percussive = [names.index(t) for t in ("drums", "beat", "beats", "techno")]
    assert (probs[1, percussive] > probs[0, percussive]).all()
    assert probs[0, names.index("piano")] > 2 * probs[1, names.index("piano")]
    # clip-level = mean of the per-patch probabilities of each clip alone
    alone, _ = mtt.tags(clips["drums"][None], lengths[1:])
    torch.testing.assert_close(alone[0], probs[1], rtol=0, atol=0)


def test_tags_msd(msd, clips):
    probs, names = msd.tags(clips["drums"][None], torch.tensor([len(clips["drums"])]))
    assert probs.shape == (1, 50) and names[0] == "rock"
    assert ((probs > 0) & (probs < 1)).all()
    assert names[int(probs[0].argmax())] in {"electronic", "rock", "dance", "electronica", "indie"}
