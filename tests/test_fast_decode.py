"""The lean decode path (``InferenceConfig``: ``llm.greedy_decode`` on a merged / converted copy)
against the reference path (transformers' ``generate()`` on the model as loaded): the same greedy
tokens in float32 on the tiny model, LoRA merged included; bfloat16 and int8 copies run and are
deterministic. Exactness only, never timings."""

from __future__ import annotations

import warnings

import pytest
import torch

from musilingo.config import PRESETS, InferenceConfig, ModelConfig
from musilingo.errors import ConfigError
from musilingo.llm import Int8WeightLinear, StopStrings, greedy_decode, inference_llm
from musilingo.model import MusiLingo
from musilingo.prompts import CAPTION_INSTRUCTION, Turn

QUESTIONS = [CAPTION_INSTRUCTION, "What is the tempo?", "Is there a drum kit? Describe the music."]


def load(**kw) -> MusiLingo:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MusiLingo.from_pretrained("tiny", device="cpu", **kw)


def features(n: int, dim: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1 + i % 3, dim, generator=g) for i in range(n)]


def with_random_lora(model: MusiLingo) -> MusiLingo:
    """Give the tiny model's LoRA B matrices random values (peft starts them at 0, a no-op)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.llm.named_parameters():
            if "lora_B" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def pair():
    """(fast, reference) tiny models with the same weights."""
    fast, ref = load(), load(fast_decode=False)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def test_fast_greedy_equals_generate(pair):
    fast, ref = pair
    assert fast.config.inference.fast_decode and not ref.config.inference.fast_decode
    dim = fast.encoder.feature_dim
    feats = features(5, dim)
    convs = [[Turn(QUESTIONS[i % 3])] for i in range(5)]
    for n in (1, 5):  # batch 1 (no padding) and a left-padded batch of different prompt lengths
        assert fast.generate(feats[:n], convs[:n]) == ref.generate(feats[:n], convs[:n])


def test_greedy_decode_tokens_equal_generate(pair):
    """Token for token, pads of finished rows included, against llm.generate()."""
    _, ref = pair
    feats = features(4, ref.encoder.feature_dim, seed=3)
    batch = ref.build_inputs(feats, [[Turn(q)] for q in QUESTIONS + QUESTIONS[:1]])
    tok = ref.tokenizer
    eos = [tok.eos_token_id]
    for eos_ids in (eos, [int(t) for t in tok(" the")["input_ids"][:1]]):  # some rows stop early
        want = ref.llm.generate(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                                max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id,
                                eos_token_id=eos_ids, temperature=None, top_p=None, top_k=None)
        got = greedy_decode(ref.llm, batch["inputs_embeds"], batch["attention_mask"], 12, eos_ids,
                            tok.pad_token_id)
        assert got.tolist() == want.tolist()


def test_merged_lora_equals_unmerged():
    over = {"llm": {"lora": {"r": 4, "alpha": 8, "dropout": 0.0}}}
    fast = with_random_lora(load(overrides=over))
    ref = with_random_lora(load(overrides=over, fast_decode=False))
    fast.prepare_inference()  # the copy was made before the LoRA weights were set
    assert fast.has_lora and fast.decode_llm is not fast.llm
    assert not hasattr(fast.decode_llm, "peft_config")  # merged: a plain transformers model
    # the copy shares the tensors the merge leaves alone
    assert fast.decode_llm.get_input_embeddings().weight is fast.llm.get_input_embeddings().weight
    feats = features(3, fast.encoder.feature_dim, seed=5)
    convs = [[Turn(q)] for q in QUESTIONS]
    batch = ref.build_inputs(feats, convs)
    with torch.no_grad():
        a = ref.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
        b = fast.decode_llm(inputs_embeds=batch["inputs_embeds"],
                            attention_mask=batch["attention_mask"]).logits
    assert (a - b).abs().max() < 1e-4 and (a - b).abs().max() > 0  # merged: new rounding only
    assert fast.generate(feats, convs) == ref.generate(feats, convs)
    # the decoding copy is not part of the model's state (saving writes the adapter as before)
    assert set(fast.state_dict()) == set(ref.state_dict())


@pytest.mark.parametrize("precision", ["bfloat16", "int8", "int8-dynamic"])
def test_reduced_precision_runs_and_is_deterministic(precision):
    m = load(precision=precision)
    assert m.config.inference.precision == precision
    assert next(m.llm.parameters()).dtype == torch.float32  # the loaded model is untouched
    if precision == "int8":
        assert not any(isinstance(mod, torch.nn.Linear) for mod in m.decode_llm.modules())
        assert any(isinstance(mod, Int8WeightLinear) for mod in m.decode_llm.modules())
    elif precision == "int8-dynamic":
        assert any("quantized" in type(mod).__module__ for mod in m.decode_llm.modules())
    else:
        assert next(m.decode_llm.parameters()).dtype == torch.bfloat16
    feats = features(3, m.encoder.feature_dim, seed=7)
    convs = [[Turn(q)] for q in QUESTIONS]
    first = m.generate(feats, convs)
    assert first == m.generate(feats, convs)
    assert all(isinstance(t, str) for t in first)


def test_sampling_and_beams_still_use_generate(pair):
    from musilingo.generation import GenerationOptions

    fast, ref = pair
    feats = features(2, fast.encoder.feature_dim)
    convs = [[Turn(QUESTIONS[0])]] * 2
    for opts in (GenerationOptions(max_new_tokens=6, num_beams=2),
                 GenerationOptions(max_new_tokens=6, do_sample=True, seed=3)):
        assert fast.generate(feats, convs, opts) == ref.generate(feats, convs, opts)


def test_stop_strings_found_across_and_inside_tokens(pair):
    tok = pair[0].tokenizer
    stop = StopStrings(tok, ["###"])
    ids = tok("A slow piano piece ###Human", add_special_tokens=False)["input_ids"]
    hit_at = next(i for i in range(1, len(ids) + 1) if stop([ids[:i]], [True])[0])
    assert "###" in tok.decode(ids[:hit_at]) and "###" not in tok.decode(ids[:hit_at - 1])
    assert stop([ids], [False]) == [False]  # finished rows are not checked


def test_inference_config_validation_and_presets():
    assert PRESETS["paper"]().inference.fast_decode is False  # the published numerics
    assert PRESETS["default"]().inference == InferenceConfig()
    with pytest.raises(ConfigError):
        InferenceConfig(precision="int4")
    tiny = PRESETS["tiny"]().to_dict()
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({**tiny, "inference": {"fast_decode": "yes"}})
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({**tiny, "inference": {"speed": 1}})
    # an older config.json without the block loads with the defaults
    del tiny["inference"]
    assert ModelConfig.from_dict(tiny).inference == InferenceConfig()


def test_trainable_model_gets_no_copy_and_int8_is_cpu_only():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MusiLingo.from_pretrained("tiny", device="cpu", trainable=True)
    assert m.decode_llm is m.llm
    assert inference_llm(m.llm, "auto") is m.llm  # nothing to merge or convert: no copy
    with pytest.raises(ConfigError):
        inference_llm(m.llm, "int4")


def test_static_cache_decode_equals_dynamic(pair):
    """The static-cache loop (what a compiled / CUDA-graph decode step runs) against the dynamic
    one, on a left-padded batch; compiling it is exercised by bench_gpu.py's smoke test."""
    _, ref = pair
    feats = features(3, ref.encoder.feature_dim, seed=11)
    batch = ref.build_inputs(feats, [[Turn(q)] for q in QUESTIONS])
    tok = ref.tokenizer
    args = (batch["inputs_embeds"], batch["attention_mask"], 10, [tok.eos_token_id], tok.pad_token_id)
    assert (greedy_decode(ref.llm, *args, static_cache=True).tolist()
            == greedy_decode(ref.llm, *args).tolist())


def test_int8_weight_linear_is_close_to_its_float_layer():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 48)
    q = Int8WeightLinear(lin)
    x = torch.randn(2, 3, 64)
    with torch.no_grad():
        want, got = lin(x), q(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    # int8 weights + bfloat16 matmul inputs: a few parts in a thousand of the output's scale
    assert (got - want).abs().max() < 0.02 * want.abs().max()
    assert q.weight_int8.dtype == torch.int8 and q.weight_int8.abs().max() == 127
