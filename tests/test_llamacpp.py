"""Runtime llama.cpp (``musilingo.llamacpp``): the GGUF written from a transformers LLaMA decodes,
in llama.cpp, the same greedy tokens as the torch path in float32 (left-padded batches, LoRA
merged, stop strings), caches its GGUF by weights, and refuses what it cannot convert with a clear
error. Exactness only, never timings (those are in ``benchmarks/bench_cpu.py``)."""

from __future__ import annotations

import os
import sys
import warnings

import pytest
import torch

from musilingo.config import InferenceConfig
from musilingo.errors import ConfigError
from musilingo.llm import StopStrings, greedy_decode, tiny_llm
from musilingo.model import MusiLingo
from musilingo.prompts import CAPTION_INSTRUCTION, Turn

llamacpp = pytest.importorskip("musilingo.llamacpp")
if os.environ.get("MUSILINGO_REQUIRE_LLAMACPP") != "1":  # scripts/test.sh sets it: never skipped
    pytest.importorskip("llama_cpp", reason="runtime llama.cpp needs llama-cpp-python (musilingo[llamacpp])")

QUESTIONS = [CAPTION_INSTRUCTION, "What is the tempo?", "Is there a drum kit? Describe the music."]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSILINGO_CACHE", str(tmp_path / "cache"))


def load(**kw) -> MusiLingo:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MusiLingo.from_pretrained("tiny", device="cpu", **kw)


def prompts(dim: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(1 + i % 3, dim, generator=g) for i in range(n)]
    return feats, [[Turn(QUESTIONS[i % 3])] for i in range(n)]


def padded_prompts(seed: int):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(3, 7, 64, generator=g)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, :3] = 0  # left padding
    mask[2, :1] = 0
    return emb, mask


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    """(transformers LLaMA, its float32 GGUF in llama.cpp, tokenizer)"""
    llm, tok = tiny_llm(seed=2)
    llm.eval()
    path = llamacpp.export_gguf(llm, tmp_path_factory.mktemp("gguf") / "tiny.gguf", "float32")
    return llm, llamacpp.LlamaCppLM(path, llm.config.hidden_size, n_ctx=64), tok


def test_gguf_logits_equal_torch_logits(tiny_pair):
    """The conversion is exact up to float32 rounding: each row's next-token logits after its
    prompt (padding dropped), every row of a left-padded batch."""
    llm, lm, tok = tiny_pair
    emb, mask = padded_prompts(0)
    lm.greedy_decode(emb, mask, 1, [tok.eos_token_id], tok.pad_token_id)
    ends = mask.sum(-1).cumsum(0) - 1
    for b in range(3):
        with torch.no_grad():
            want = llm(inputs_embeds=emb[b:b + 1][:, mask[b].bool()]).logits[0, -1]
        got = torch.from_numpy(lm.logits(int(ends[b])).copy())
        assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


def test_gguf_greedy_equals_torch_greedy(tiny_pair):
    """Token for token against ``llm.greedy_decode`` (float32), rows of different lengths. The
    prompts are ones whose greedy path has no near-tie (top-2 logits within float32 rounding,
    where either runtime may take either token: seeds 0 and 2 have one)."""
    llm, lm, tok = tiny_pair
    emb, mask = padded_prompts(1)
    eos = [tok.eos_token_id]
    want = greedy_decode(llm, emb, mask, 16, eos, tok.pad_token_id)
    got = lm.greedy_decode(emb, mask, 16, eos, tok.pad_token_id)  # grows the 64-position context
    assert got.tolist() == want.tolist()
    # a row that stops early (eos = a token the model writes) is padded like torch's
    early = [int(want[0, 2])]
    assert (lm.greedy_decode(emb, mask, 16, early, tok.pad_token_id).tolist()
            == greedy_decode(llm, emb, mask, 16, early, tok.pad_token_id).tolist())


def test_runtime_llamacpp_generates_what_torch_does():
    """Whole model, LoRA merged into the GGUF (random LoRA weights, so merging matters), stop
    strings on: the same answers as runtime torch in float32."""
    over = {"llm": {"lora": {"r": 4, "alpha": 8, "dropout": 0.0}}}
    torch_m = load(overrides=over)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in torch_m.llm.named_parameters():
            if "lora_B" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    torch_m.prepare_inference()
    cpp = load(overrides=over, runtime="llama.cpp")
    cpp.load_state_dict(torch_m.state_dict())
    cpp.prepare_inference()
    assert isinstance(cpp.decode_llm, llamacpp.LlamaCppLM)
    feats, convs = prompts(torch_m.encoder.feature_dim, 5)
    for n in (1, 5):
        assert cpp.generate(feats[:n], convs[:n]) == torch_m.generate(feats[:n], convs[:n])


def test_gguf_is_cached_by_weights(tmp_path):
    m = load(runtime="llama.cpp")
    files = sorted((tmp_path / "cache" / "gguf").glob("*.gguf"))
    assert len(files) == 1 and files[0].name.endswith("-f32.gguf")
    stamp = files[0].stat().st_mtime_ns
    m.prepare_inference()  # same weights: the file is reused
    assert sorted((tmp_path / "cache" / "gguf").glob("*.gguf")) == files
    assert files[0].stat().st_mtime_ns == stamp
    with torch.no_grad():
        m.llm.get_input_embeddings().weight[0, 0] += 1.0
    m.prepare_inference()  # new weights: a new file
    assert len(list((tmp_path / "cache" / "gguf").glob("*.gguf"))) == 2


def test_gguf_of_an_llm_read_from_files_is_found_without_merging_or_hashing(tmp_path, monkeypatch):
    """An LLM read from a folder finds its cached GGUF by a source key (files, sampled base values,
    LoRA tensors): no merged copy, no hash of every weight. The file is the merged model's; a new
    adapter, a changed base value or rewritten base files give another key."""
    from musilingo.config import LLMConfig, LoraConfig
    from musilingo.llm import inference_llm, load_llm

    folder = tmp_path / "llm"
    base, tok = tiny_llm(seed=3)
    base.save_pretrained(folder)
    tok.save_pretrained(folder)
    cfg = LLMConfig(name_or_path=str(folder), lora=LoraConfig(r=2, alpha=4, dropout=0.0))

    def loaded(seed=0):
        llm, _ = load_llm(cfg)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in llm.named_parameters():
                if "lora_" in name:  # as a trained adapter read from its file: the same every load
                    p.copy_(0.3 * torch.randn(p.shape, generator=g))
        return llm

    llm = loaded()
    key = llamacpp.source_key(llm)
    assert key is not None and key == llamacpp.source_key(loaded())
    path = llamacpp.cached_gguf(llm, "float32")
    assert path.name == f"src-{key}-f32.gguf"
    direct = llamacpp.export_gguf(inference_llm(llm, "auto"), tmp_path / "direct.gguf", "float32")
    assert path.read_bytes() == direct.read_bytes()  # the merged model, LoRA included

    def boom(*a, **kw):
        raise AssertionError("a cache hit must not merge or hash the weights")

    monkeypatch.setattr(llamacpp, "weights_digest", boom)
    monkeypatch.setattr("musilingo.llm.inference_llm", boom)
    assert llamacpp.cached_gguf(loaded(), "float32") == path
    monkeypatch.undo()
    assert llamacpp.source_key(loaded(seed=1)) != key  # another adapter
    changed = loaded()
    with torch.no_grad():
        changed.get_input_embeddings().weight[0, 0] += 1.0
    assert llamacpp.source_key(changed) != key  # changed in memory after loading
    tiny_llm(seed=4)[0].save_pretrained(folder)  # new base files
    assert llamacpp.source_key(loaded()) != key
    assert llamacpp.source_key(tiny_llm()[0]) is None  # not read from files: hashed instead


def test_gguf_types(tmp_path):
    """float32: every weight F32. Below it, a weight a smaller llama.cpp type holds exactly keeps
    that type (as the Q4_1 SmolLM2's do), the rest take the precision's type; norms stay F32."""
    import gguf

    llm, tok = tiny_llm(seed=3)
    exact = {"model.layers.0.mlp.up_proj.weight": "Q4_1", "model.layers.0.mlp.down_proj.weight": "Q8_0"}
    with torch.no_grad():
        for name, kind in exact.items():
            p, k = llm.get_parameter(name), gguf.GGMLQuantizationType[kind]
            p.copy_(torch.from_numpy(gguf.quants.dequantize(gguf.quants.quantize(p.numpy(), k), k)))
    for precision, rest in (("float32", "F32"), ("int8", "Q8_0"), ("bfloat16", "BF16")):
        path = llamacpp.export_gguf(llm, tmp_path / f"{precision}.gguf", precision)
        kinds = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}
        assert kinds["blk.0.attn_q.weight"] == rest and kinds["blk.0.attn_norm.weight"] == "F32"
        assert kinds["output.weight"] == rest  # the tiny model does not tie its embeddings
        assert kinds["blk.0.ffn_up.weight"] == ("F32" if rest == "F32" else "Q4_1")
        assert kinds["blk.0.ffn_down.weight"] == ("F32" if rest == "F32" else "Q8_0")
        lm = llamacpp.LlamaCppLM(path, 64)
        out = lm.greedy_decode(torch.randn(2, 5, 64), torch.ones(2, 5, dtype=torch.long), 6,
                               [tok.eos_token_id], tok.pad_token_id, StopStrings(tok, ["###"]))
        assert out.shape[0] == 2 and 1 <= out.shape[1] <= 6
        lm.close()


def test_runtime_auto_picks_llamacpp_where_it_runs(monkeypatch):
    assert load(runtime="auto").runtime == "llama.cpp"
    assert load(runtime="auto", precision="int8-dynamic").runtime == "torch"  # no GGUF form
    assert load(runtime="auto", fast_decode=False).runtime == "torch"
    assert load().runtime == "torch"  # the library default
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    assert load(runtime="auto").runtime == "torch"


def test_refusals(monkeypatch):
    with pytest.raises(ConfigError, match="int8-dynamic"):
        InferenceConfig(runtime="llama.cpp", precision="int8-dynamic")
    with pytest.raises(ConfigError, match="fast_decode"):
        InferenceConfig(runtime="llama.cpp", fast_decode=False)
    with pytest.raises(ConfigError, match="unknown runtime"):
        InferenceConfig(runtime="onnx")
    llm, _ = tiny_llm()
    llm.config.model_type = "gpt2"
    with pytest.raises(ConfigError, match="LLaMA-architecture"):
        llamacpp.check_convertible(llm.config)
    llm.config.model_type = "llama"
    llm.config.rope_scaling = {"rope_type": "yarn", "factor": 4.0}
    with pytest.raises(ConfigError, match="rope scaling"):
        llamacpp.check_convertible(llm.config)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    with pytest.raises(ConfigError, match="pip install"):
        load(runtime="llama.cpp")


def test_bad_gguf_file_is_a_clear_error(tmp_path):
    from musilingo.errors import CheckpointError

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF not really")
    with pytest.raises(CheckpointError, match="bad.gguf"):
        llamacpp.LlamaCppLM(bad, 64)


def test_cli_and_eval_take_the_runtime(wav_factory, capsys, tmp_path):
    """``--runtime llama.cpp`` reaches the model through the CLI, and eval records it in
    run.json; float32 answers equal torch's."""
    import json

    from musilingo.cli import EXIT_OK, main

    a, b = wav_factory("a.wav", 2.0), wav_factory("b.wav", 3.0, freq=300)
    texts = {}
    for runtime in ("torch", "llama.cpp"):
        assert main(["caption", str(a), str(b), "--model", "tiny", "--json", "--max-new-tokens", "6",
                     "--runtime", runtime]) == EXIT_OK
        texts[runtime] = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
        # the llama.cpp run wrote the model's GGUF copy; the torch run did not
        assert any((tmp_path / "cache" / "gguf").glob("*.gguf")) == (runtime == "llama.cpp")
    assert texts["llama.cpp"] == texts["torch"] and len(texts["torch"]) == 2
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": p.stem, "audio": str(p), "split": "test",
                                            "caption": "a tone"}) + "\n" for p in (a, b)))
    out = tmp_path / "eval"
    assert main(["eval", str(manifest), "--model", "tiny", "--task", "caption", "--out", str(out),
                 "--runtime", "llama.cpp", "--max-new-tokens", "4", "--no-bertscore"]) == EXIT_OK
    assert json.loads((out / "run.json").read_text())["runtime"] == "llama.cpp"
