"""MERT loading without remote code, hidden-state aggregation, pooling and padding exactness."""

import json

import pytest
import torch
from transformers import HubertConfig, HubertModel

from musilingo.encoders.base import num_pooled_tokens, pool_frames
from musilingo.encoders.mert import TINY_MERT_CONFIG, MertEncoder, random_mert
from musilingo.errors import CheckpointError


def _mert_folder(tmp_path, do_normalize=False, legacy_names=True, drop=None):
    """A tiny checkpoint laid out like m-a-p/MERT-*: MERT config keys, HuBERT parameter names."""
    torch.manual_seed(1)
    ref = HubertModel(HubertConfig(**TINY_MERT_CONFIG)).eval()
    state = ref.state_dict()
    if legacy_names:  # the published .bin files use weight_norm's weight_g / weight_v
        g = state.pop("encoder.pos_conv_embed.conv.parametrizations.weight.original0")
        v = state.pop("encoder.pos_conv_embed.conv.parametrizations.weight.original1")
        state["encoder.pos_conv_embed.conv.weight_g"] = g
        state["encoder.pos_conv_embed.conv.weight_v"] = v
    if drop:
        state = {k: v for k, v in state.items() if not k.startswith(drop)}
    cfg = dict(TINY_MERT_CONFIG, model_type="mert_model", architectures=["MERTModel"],
               auto_map={"AutoModel": "modeling_MERT.MERTModel"}, attention_relax=-1.0,
               feature_extractor_cqt=False, feature_extractor_cqt_bins=336, deepnorm=False,
               conv_pos_batch_norm=False, sample_rate=24000)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": do_normalize, "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "feature_size": 1, "padding_side": "right", "padding_value": 0, "return_attention_mask": True,
        "sampling_rate": 24000}))
    torch.save(state, tmp_path / "pytorch_model.bin")
    return ref


def test_mert_format_checkpoint_loads_and_matches_hubert(tmp_path):
    ref = _mert_folder(tmp_path)
    enc = MertEncoder.from_pretrained(str(tmp_path))
    assert enc.sample_rate == 24000 and enc.frame_rate == 75.0 and enc.feature_dim == 32
    audio = torch.randn(1, 24000) * 0.1
    with torch.no_grad():
        r = ref(audio, output_hidden_states=True)
        out = enc(audio, torch.tensor([24000]))
    # transformers' hidden_states hold the input to each layer, then the raw last-layer output;
    # MusiLingo (transformers 4) averaged the final LayerNorm output instead of the raw one.
    states = list(r.hidden_states[:-1]) + [r.last_hidden_state]
    expected = torch.stack(states).mean(0)
    assert len(states) == TINY_MERT_CONFIG["num_hidden_layers"] + 1
    torch.testing.assert_close(out.frames, expected, atol=1e-5, rtol=1e-5)


def test_layer_choice(tmp_path):
    ref = _mert_folder(tmp_path)
    enc = MertEncoder.from_pretrained(str(tmp_path), layers=[2])
    audio = torch.randn(1, 12000) * 0.1
    with torch.no_grad():
        last = ref(audio).last_hidden_state
    torch.testing.assert_close(enc(audio, torch.tensor([12000])).frames, last, atol=1e-5, rtol=1e-5)
    with pytest.raises(CheckpointError, match="layers"):
        MertEncoder.from_pretrained(str(tmp_path), layers=[7])


def test_preprocessor_normalisation_read_from_checkpoint(tmp_path):
    _mert_folder(tmp_path, do_normalize=True)
    enc = MertEncoder.from_pretrained(str(tmp_path))
    assert enc.do_normalize
    a = torch.randn(1, 24000) * 0.1
    torch.testing.assert_close(enc(a, torch.tensor([24000])).frames, enc(a * 5, torch.tensor([24000])).frames,
                               atol=1e-4, rtol=1e-4)


def test_missing_weights_is_a_clear_error(tmp_path):
    _mert_folder(tmp_path, drop="encoder.layers.1")
    with pytest.raises(CheckpointError, match="lacks"):
        MertEncoder.from_pretrained(str(tmp_path))


def test_no_weights_file(tmp_path):
    _mert_folder(tmp_path)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        MertEncoder.from_pretrained(str(tmp_path))


def test_cqt_checkpoint_refused(tmp_path):
    _mert_folder(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["feature_extractor_cqt"] = True
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="CQT"):
        MertEncoder.from_pretrained(str(tmp_path))


def test_token_counts_10s_and_30s():
    enc = random_mert()
    assert enc.num_frames(10 * 24000) == 749 and enc.num_frames(30 * 24000) == 2249
    assert num_pooled_tokens(749, 325) == 3 and num_pooled_tokens(2249, 325) == 7
    out = enc(torch.randn(1, 10 * 24000) * 0.1, torch.tensor([240000]))
    assert pool_frames(out.frames, out.mask, 325).frames.shape[1] == 3


def test_padded_batch_equals_each_clip_alone():
    enc = random_mert()
    lengths = [24000, 17000, 30000]
    clips = [torch.randn(n) * 0.1 for n in lengths]
    batch = enc.encode(clips)
    for i, c in enumerate(clips):
        alone = enc.encode([c])
        n = alone.frames.shape[1]
        assert int(batch.mask[i].sum()) == n
        torch.testing.assert_close(batch.frames[i, :n], alone.frames[0], atol=1e-5, rtol=1e-4)
        assert batch.frames[i, n:].abs().max() == 0 if n < batch.frames.shape[1] else True
        pb = pool_frames(batch.frames[i:i + 1], batch.mask[i:i + 1], 7)
        pa = pool_frames(alone.frames, alone.mask, 7)
        torch.testing.assert_close(pb.frames[0, pb.mask[0]], pa.frames[0], atol=1e-5, rtol=1e-4)


def test_naive_padding_would_differ():
    """The reason for the per-length conv: GroupNorm over time sees zero padding."""
    enc = random_mert()
    a = torch.randn(1, 17000) * 0.1
    padded = torch.nn.functional.pad(a, (0, 13000))
    with torch.no_grad():
        naive = enc.model.feature_extractor(padded)[..., :enc.num_frames(17000)]
        exact = enc.model.feature_extractor(a)
    assert (naive - exact).abs().max() > 1e-3


def test_pooling_remainder_token():
    frames = torch.arange(10, dtype=torch.float32).view(1, 10, 1)
    out = pool_frames(frames, torch.ones(1, 10, dtype=torch.bool), 4)
    assert out.frames.view(-1).tolist() == [1.5, 5.5, 8.5]
