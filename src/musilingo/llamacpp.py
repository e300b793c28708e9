"""llama.cpp as the greedy decoding runtime of a LLaMA-architecture LLM (``InferenceConfig.runtime
= "llama.cpp"``): the decoding copy of the LLM (LoRA merged) is written once as a GGUF file and
decoded by llama.cpp through llama-cpp-python's C API, fed the prompt's input embeddings (text
and audio tokens, built by :class:`~musilingo.model.MusiLingo` in torch exactly as for the torch
path) and then its own greedy tokens.

Why: on a CPU most of the torch decode step is framework overhead per layer call, not arithmetic
(``benchmarks/results``); llama.cpp runs the whole step as one graph. Tokenising and detokenising
stay in transformers, so the GGUF carries no vocabulary (``tokenizer.ggml.model = "none"``) and
any LLaMA-architecture model converts, whatever its tokenizer.

The GGUF is written here with the ``gguf`` package's writer rather than llama.cpp's
``convert_hf_to_gguf.py``: that script is not installed by any registry package (the sdist of
llama-cpp-python carries only part of it), and a LLaMA model needs only the handful of keys below.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from musilingo.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

#: the weights of the GGUF a precision is written in (2-D weights; norms stay float32). Below
#: float32, a weight whose values a smaller llama.cpp type holds exactly keeps that type instead
#: (``LOSSLESS_TYPES``): the offline default's SmolLM2 comes as a Q4_1 GGUF, so all its weights but
#: the LoRA-merged attention projections go back to Q4_1 / Q8_0 bit for bit.
GGUF_TYPES = {"auto": "F32", "float32": "F32", "bfloat16": "BF16", "int8": "Q8_0"}
LOSSLESS_TYPES = ("Q4_1", "Q8_0")


def require_llama_cpp():
    """The ``llama_cpp`` module, or a clear error saying how to install it."""
    try:
        import llama_cpp
    except (ImportError, OSError, RuntimeError) as e:  # not installed, or its library fails to load
        raise ConfigError("runtime llama.cpp needs llama-cpp-python: pip install 'musilingo[llamacpp]' "
                          f"(builds llama.cpp from source: cmake and a C++ compiler) ({e})") from None
    return llama_cpp


def can_run(config, device, precision: str) -> bool:
    """Whether runtime llama.cpp can decode this LLM here (what ``runtime: auto`` asks)."""
    if torch.device(device).type != "cpu" or precision not in GGUF_TYPES:
        return False
    try:
        check_convertible(config)
        require_llama_cpp()
    except ConfigError:
        return False
    return True


def check_convertible(config) -> None:
    """Refuse an LLM whose architecture this converter does not write exactly."""
    if getattr(config, "model_type", None) != "llama":
        raise ConfigError(f"runtime llama.cpp converts LLaMA-architecture LLMs only, not "
                          f"{getattr(config, 'model_type', None)!r}; use runtime torch")
    rope = getattr(config, "rope_scaling", None) or {}
    if rope and rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ConfigError(f"runtime llama.cpp: rope scaling {rope!r} is not converted; use runtime torch")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ConfigError("runtime llama.cpp: LLaMA models with bias terms are not converted; "
                          "use runtime torch")


def _rope_theta(config) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def _to_gguf_rope_order(w: np.ndarray, n_head: int) -> np.ndarray:
    """q/k projection rows from transformers' rotate-half RoPE layout to the interleaved pairs
    llama.cpp's LLaMA graph rotates (the inverse of the permutation transformers applies when it
    reads a GGUF)."""
    out, rest = w.shape[0], w.shape[1:]
    return w.reshape(n_head, 2, out // n_head // 2, *rest).swapaxes(1, 2).reshape(w.shape)


def weights_digest(llm: nn.Module) -> str:
    """A content hash of ``llm``'s weights (names, shapes, dtypes and bytes)."""
    h = hashlib.blake2b(digest_size=12)
    for name, t in llm.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


#: bump when export_gguf writes other bytes for the same weights (invalidates source keys)
EXPORT_FORMAT = 1
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_SAMPLE = 64  # values read from each end of every base tensor into a source key


def _weights_folder(name_or_path: str) -> Path | None:
    """The folder a transformers model was read from: a local folder, or a hub id's snapshot in the
    local hub cache; None when there is none."""
    if not name_or_path:
        return None
    if os.path.isdir(name_or_path):
        return Path(name_or_path)
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # not a hub id (huggingface_hub validates the name)
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def source_key(llm: nn.Module) -> str | None:
    """A cheap key for the decoding copy of ``llm`` (a transformers LLaMA, or a peft model around
    one) without merging or hashing its weights (``weights_digest`` reads all ~0.5 GB of the
    default's and needs the merged copy; a fresh load of the default without them took 0.84x the
    wall time and 0.66x the peak memory, ``benchmarks/results/2026-12-02-cpu2-load-source-key.json``).

    It is built from: the base weights' files (resolved path, size, modification time; hub
    snapshots resolve to content-named blobs), the first and last values of every base tensor as
    loaded (a model changed in memory after loading gets another key), every LoRA tensor in full
    with the adapter's settings, the dtype, and ``EXPORT_FORMAT``. None when the base weights were
    not read from files (e.g. the tiny test model): the caller then hashes the merged weights."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    folder = _weights_folder(str(getattr(base.config, "_name_or_path", "") or ""))
    files = sorted(f for f in folder.iterdir() if f.name.endswith(_WEIGHT_SUFFIXES)) if folder else []
    if not files:
        return None
    h = hashlib.blake2b(digest_size=12)
    h.update(f"musilingo gguf export {EXPORT_FORMAT}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    peft_config = getattr(llm, "peft_config", None) or {}
    for name, cfg in sorted(peft_config.items()):
        settings = json.dumps(cfg.to_dict(), sort_keys=True,  # sets (target modules) sorted
                              default=lambda o: sorted(map(str, o)) if isinstance(o, (set, frozenset)) else str(o))
        h.update(f"adapter {name}: {settings}".encode())
    for name, t in llm.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        flat = t.reshape(-1)
        part = flat if "lora_" in name or flat.numel() <= 2 * _SAMPLE else \
            torch.cat([flat[:_SAMPLE], flat[-_SAMPLE:]])
        h.update(part.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def export_gguf(llm: nn.Module, path: str | os.PathLike, precision: str = "int8") -> Path:
    """Write ``llm`` (a transformers ``LlamaForCausalLM``, LoRA already merged) as a GGUF file at
    ``path`` (atomically: a temporary file renamed into place), 2-D weights in
    ``GGUF_TYPES[precision]``."""
    import gguf

    if precision not in GGUF_TYPES:
        raise ConfigError(f"runtime llama.cpp: precision {precision!r} has no GGUF form; choose one of "
                          f"{sorted(GGUF_TYPES)}")
    cfg = llm.config
    check_convertible(cfg)
    qtype = gguf.GGMLQuantizationType[GGUF_TYPES[precision]]
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        w = gguf.GGUFWriter(tmp, "llama")
        w.add_name("musilingo decoding copy")
        w.add_context_length(cfg.max_position_embeddings)
        w.add_embedding_length(cfg.hidden_size)
        w.add_block_count(cfg.num_hidden_layers)
        w.add_feed_forward_length(cfg.intermediate_size)
        w.add_head_count(n_head)
        w.add_head_count_kv(n_kv)
        w.add_rope_dimension_count(head_dim)
        w.add_rope_freq_base(_rope_theta(cfg))
        w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
        w.add_vocab_size(cfg.vocab_size)
        w.add_tokenizer_model("none")  # tokens in and out stay with transformers' tokenizer
        w.add_file_type({"F32": gguf.LlamaFileType.ALL_F32, "BF16": gguf.LlamaFileType.MOSTLY_BF16,
                         "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[qtype.name])
        tied = bool(getattr(cfg, "tie_word_embeddings", False))
        for name, t in llm.state_dict().items():
            if tied and name == "lm_head.weight":
                continue  # llama.cpp reuses token_embd when output.weight is absent
            new = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if new is None:
                if name.endswith("rotary_emb.inv_freq"):
                    continue
                raise CheckpointError(f"runtime llama.cpp: no GGUF name for LLM tensor {name!r}")
            a = t.detach().float().cpu().numpy()
            if name.endswith("q_proj.weight"):
                a = _to_gguf_rope_order(a, n_head)
            elif name.endswith("k_proj.weight"):
                a = _to_gguf_rope_order(a, n_kv)
            if a.ndim == 2 and qtype.name != "F32":
                kind, data = _smallest_exact(gguf, a, qtype)
                w.add_tensor(new, data, raw_dtype=kind)
            else:
                w.add_tensor(new, np.ascontiguousarray(a, dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _smallest_exact(gguf, a: np.ndarray, fallback):
    """(type, data) of the 2-D float32 weight ``a``: the first of ``LOSSLESS_TYPES`` that holds
    it exactly (quantise, dequantise, compare), else ``fallback``."""
    tried = {}
    for name in LOSSLESS_TYPES:
        kind = gguf.GGMLQuantizationType[name]
        if a.shape[-1] % gguf.GGML_QUANT_SIZES[kind][0]:
            continue
        tried[kind] = data = gguf.quants.quantize(a, kind)
        if np.array_equal(gguf.quants.dequantize(data, kind), a):
            return kind, data
    # int8's fallback (Q8_0) was just computed above: not quantised a second time
    return fallback, tried[fallback] if fallback in tried else gguf.quants.quantize(a, fallback)


def cached_gguf(llm: nn.Module, precision: str) -> Path:
    """The GGUF of the decoding copy of ``llm`` in ``precision`` under the user cache, written
    once per weights. ``llm`` as loaded (LoRA not merged): the merged copy
    (``llm.inference_llm``) is only made when the file has to be written, or when the weights have
    no :func:`source_key` and are hashed instead (``weights_digest`` of the merged copy)."""
    from musilingo.llm import cache_dir, inference_llm

    kind = GGUF_TYPES[precision].lower() + ("" if GGUF_TYPES[precision] == "F32" else "-exact")
    merged = None
    key = source_key(llm)
    if key is None:
        merged = inference_llm(llm, "auto")
        key = weights_digest(merged)
    else:
        key = "src-" + key
    dest = cache_dir() / "gguf" / f"{key}-{kind}.gguf"
    if not dest.is_file():
        log.warning("writing the llama.cpp copy of the LLM to %s (once per model)", dest)
        export_gguf(merged if merged is not None else inference_llm(llm, "auto"), dest, precision)
    return dest


_LOG_CALLBACK = None


def _quiet(llama_cpp) -> None:
    """Send llama.cpp's own log lines to this module's logger at debug level (once)."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is None:
        @llama_cpp.llama_log_callback
        def _cb(level, text, user_data):
            if level == 4:  # GGML_LOG_LEVEL_ERROR (its warnings, e.g. the dummy vocabulary: debug)
                log.error("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())
            else:
                log.debug("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

        _LOG_CALLBACK = _cb
        llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()


class LlamaCppLM:
    """A GGUF model in a llama.cpp context that decodes greedily from input embeddings.

    ``n_ctx``: KV positions shared by all rows of a batch (a batch of B prompts of L positions
    writing T tokens needs B * (L + T)); ``n_threads``: default torch's thread count. The context
    is grown (re-made) when a batch needs more. Calls from several threads take turns.
    """

    def __init__(self, path: str | os.PathLike, hidden_size: int, n_ctx: int = 4096,
                 n_threads: int | None = None):
        self.llama_cpp = lc = require_llama_cpp()
        _quiet(lc)
        self.path = str(path)
        self.hidden_size = hidden_size
        self.n_threads = n_threads or torch.get_num_threads()
        mparams = lc.llama_model_default_params()
        # No weight repacking (llama.cpp's CPU "extra buffer types"): on an AVX-512 / AVX-VNNI
        # CPU the repacked Q8_0 kernels of llama-cpp-python 0.3.36 crashed the process (SIGSEGV
        # in llama_decode, any model size, tests/test_llamacpp.py::test_gguf_types); with
        # repacking off the same file decodes. The same class of bug: ggml-org/llama.cpp#16479.
        # float32 and bfloat16 weights are never repacked, so only int8 loses its speed-up.
        mparams.use_extra_bufts = False
        self.model = lc.llama_model_load_from_file(self.path.encode(), mparams)
        if not self.model:
            raise CheckpointError(f"{self.path}: llama.cpp could not load this GGUF file")
        self.n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(self.model))
        self.ctx = None
        self.n_ctx = 0
        self.n_seq = 0
        self._lock = threading.Lock()  # one llama.cpp context: one decode at a time
        self._make_context(n_ctx, 1)

    def _make_context(self, n_ctx: int, n_seq: int) -> None:
        lc = self.llama_cpp
        if self.ctx:
            lc.llama_free(self.ctx)
            self.ctx = None
        p = lc.llama_context_default_params()
        p.n_ctx = n_ctx
        p.n_batch = n_ctx  # a whole batch's prompts go in one llama_decode call
        p.n_ubatch = min(n_ctx, 512)
        p.n_seq_max = n_seq
        p.kv_unified = True  # the rows share one pool of positions
        p.n_threads = p.n_threads_batch = self.n_threads
        p.no_perf = True
        # float32 K/V and no flash attention: with llama.cpp's defaults (float16 K/V, its CPU
        # flash-attention kernel, which works in float16) the tiny model's logits were 3e-3 off
        # torch's in float32; with these, float32 GGUFs answer as torch does
        # (tests/test_llamacpp.py). The cache costs 4 bytes x 2 x layers x KV width per position.
        p.type_k = p.type_v = 0  # GGML_TYPE_F32
        p.flash_attn_type = 0  # LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.ctx = lc.llama_init_from_model(self.model, p)
        if not self.ctx:
            raise CheckpointError(f"{self.path}: llama.cpp could not make a context of {n_ctx} positions")
        self.n_ctx, self.n_seq = n_ctx, n_seq

    def close(self) -> None:
        lc = self.llama_cpp
        if getattr(self, "ctx", None):
            lc.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            lc.llama_model_free(self.model)
            self.model = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def _decode(self, batch) -> None:
        rc = self.llama_cpp.llama_decode(self.ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama.cpp decode failed (code {rc})")

    def logits(self, batch_index: int) -> np.ndarray:
        """The last decode call's logits [n_vocab] after its batch position ``batch_index`` (one
        that asked for them; -1 = the last); a view, valid until the next call."""
        ptr = self.llama_cpp.llama_get_logits_ith(self.ctx, batch_index)
        if not ptr:
            raise RuntimeError(f"llama.cpp has no logits for batch position {batch_index}")
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _argmax(self, batch_index: int) -> int:
        return int(self.logits(batch_index).argmax())

    def greedy_decode(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                      max_new_tokens: int, eos_token_ids: Sequence[int], pad_token_id: int,
                      stop=None) -> torch.Tensor:
        """``llm.greedy_decode``'s contract on llama.cpp: prompts ``inputs_embeds`` [B, L, H]
        (left-padded; ``attention_mask`` [B, L]) -> new tokens [B, T], finished rows padded with
        ``pad_token_id``. Each row is its own sequence at positions 0.. (padding dropped)."""
        with self._lock:
            return self._greedy(inputs_embeds, attention_mask, max_new_tokens, eos_token_ids,
                                pad_token_id, stop)

    @torch.inference_mode()
    def _greedy(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                max_new_tokens: int, eos_token_ids: Sequence[int], pad_token_id: int,
                stop=None) -> torch.Tensor:
        lc = self.llama_cpp
        B, L, H = inputs_embeds.shape
        if H != self.hidden_size:
            raise ConfigError(f"inputs_embeds width {H} != the GGUF model's {self.hidden_size}")
        mask = attention_mask.bool().cpu()
        lengths = mask.sum(-1).tolist()
        need = sum(lengths) + B * max_new_tokens
        if need > self.n_ctx or B > self.n_seq:
            self._make_context(max(need, self.n_ctx), max(B, self.n_seq))
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx), True)
        emb = inputs_embeds.detach().float().cpu()
        rows = [emb[b][mask[b]] for b in range(B)]  # [L_b, H] each, padding dropped
        flat = np.ascontiguousarray(torch.cat(rows).numpy(), dtype=np.float32)
        n = flat.shape[0]
        batch = lc.llama_batch_init(n, H, 1)
        try:
            batch.n_tokens = n
            ctypes.memmove(batch.embd, flat.ctypes.data, flat.nbytes)
            i = 0
            for b, length in enumerate(lengths):
                for p in range(length):
                    batch.pos[i] = p
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = b
                    batch.logits[i] = p == length - 1
                    i += 1
            self._decode(batch)
        finally:
            lc.llama_batch_free(batch)
        ends = np.cumsum(lengths) - 1
        nxt = [self._argmax(int(e)) for e in ends]
        eos = set(int(t) for t in eos_token_ids)
        live = [True] * B
        pos = list(lengths)
        steps: list[list[int]] = []
        history: list[list[int]] = [[] for _ in range(B)]
        step_batch = lc.llama_batch_init(B, 0, 1)
        try:
            for step in range(max_new_tokens):
                toks = [int(t) if live[b] else pad_token_id for b, t in enumerate(nxt)]
                steps.append(toks)
                for b, t in enumerate(toks):
                    if live[b] and t in eos:
                        live[b] = False
                if stop is not None and stop.stop_strings:
                    for h, t in zip(history, toks):
                        h.append(t)
                    for b, hit in enumerate(stop(history, live)):
                        if hit:
                            live[b] = False
                if not any(live) or step == max_new_tokens - 1:
                    break
                order = [b for b in range(B) if live[b]]
                step_batch.n_tokens = len(order)
                for j, b in enumerate(order):
                    step_batch.token[j] = toks[b]
                    step_batch.pos[j] = pos[b]
                    step_batch.n_seq_id[j] = 1
                    step_batch.seq_id[j][0] = b
                    step_batch.logits[j] = True
                    pos[b] += 1
                self._decode(step_batch)
                nxt = [pad_token_id] * B
                for j, b in enumerate(order):
                    nxt[b] = self._argmax(j)
        finally:
            lc.llama_batch_free(step_batch)
        if not steps:
            return torch.empty((B, 0), dtype=torch.long)
        return torch.tensor(steps, dtype=torch.long).T.contiguous()
