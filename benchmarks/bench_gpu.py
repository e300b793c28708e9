#!/usr/bin/env python
"""Paper-scale GPU throughput with random weights (prints measured figures; not a test).

Shapes: a MERT-330M-shaped encoder (``random_mert(MERT_330M_CONFIG)``) and a 7B LLaMA-shaped LLM
(hidden 4096, 32 layers, 32 heads, intermediate 11008, vocab 32000), both bf16, initialised
directly on the GPU. Random weights: the speeds are those of the real models, the text is noise.

Sections (run in this order; a failing section is recorded and the others go on):

* mert      ten-second clips/s through ``MertEncoder.forward`` + pooling, equal-length batches
* llm       64 new tokens from ~100-token ``inputs_embeds`` prompts, captions/s, eager
* pipeline  encoder -> pooling -> linear projector 1024->4096 -> splice into the prompt -> generate,
            captions/s (audio starts on the host, so the host->device copy is included)
* train     paper-scale training step: projector trainable (fp32 master, AdamW), LLM frozen, bf16
            autocast, 103-token sequences, samples/s; from precomputed features and with MERT in the loop
* compile   (skipped by ``--quick`` / ``--no-compile``) the llm and pipeline figures again with a
            static KV cache and a compiled decode step (mode ``reduce-overhead``), through
            transformers' own path (``cache_implementation="static"`` + ``CompileConfig``: the
            prefill stays eager, decode steps are compiled). Wrapping ``model.forward`` in
            ``torch.compile`` by hand (prefill compiled too) was tried and removed: with
            transformers 5.17 on an H200 it fails ("accessing tensor output of CUDAGraphs that has
            been overwritten by a subsequent run", in the static cache's ``index_copy_``)
* fast      (issue 18; ``--sections fast``, or ``run_gpu_checks.sh OUT fast``) the lean path of
            ``musilingo.llm``: ``greedy_decode`` with a static KV cache and the decode step compiled
            by ``compiled_decode_step`` (``reduce-overhead``: CUDA graphs), end to end from host
            audio through bf16 MERT at batches up to 256 (``--fast-batches``), against the 200
            captions/s target; first a check of its greedy tokens against the eager path (the
            same loop, dynamic cache, not compiled) on the same inputs (``--fast-check-batch``)

Usage (on a machine with an NVIDIA GPU)::

    .venv/bin/python benchmarks/bench_gpu.py --quick --json-out gpu.json    # < 4 min on an H100
    .venv/bin/python benchmarks/bench_gpu.py --json-out gpu.json            # + compile, more repeats

Anchors (H200, plain transformers, random weights) are printed beside each figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

from machine import cpu_model, loadavg  # benchmarks/machine.py (the script's folder is on sys.path)

# Anchors measured on an H200 with plain transformers and random weights.
ANCHORS = {
    ("mert", 32): "603 clips/s (H200)",
    ("llm eager", 1): "0.67 cap/s (H200)",
    ("llm eager", 32): "24 cap/s (H200)",
    ("llm static+compile", 32): "56 cap/s (H200)",
    ("train features", 8): "~104 samples/s (H200)",
    ("train features", 32): "~141 samples/s (H200)",
}
TARGET_CAPTIONS_PER_S = 100.0
FAST_TARGET_CAPTIONS_PER_S = 200.0  # issue 18: the lean path, end to end, on an H200

LLAMA_7B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                intermediate_size=11008, vocab_size=32000, max_position_embeddings=2048, rms_norm_eps=1e-6)
LLAMA_TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=128, vocab_size=400, max_position_embeddings=512, rms_norm_eps=1e-6)
SAMPLE_RATE = 24000  # MERT input rate
CLIP_S = 10.0
POOL_WINDOW = 325  # MusiLingo: 325 MERT frames (4.33 s) per audio token -> 3 tokens per 10 s


def parse_ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]




class Bench:
    def __init__(self, args):
        import torch

        self.torch = torch
        self.args = args
        self.smoke = args.cpu_smoke
        self.dev = torch.device("cpu" if self.smoke else "cuda")
        self.dtype = torch.bfloat16
        self.rows: list[dict] = []
        self.errors: dict[str, str] = {}
        self.repeats = args.repeats or (2 if args.quick or self.smoke else 5)
        self.warmup = 1 if args.quick or self.smoke else 2
        self.enc = self.llm = self.proj = None

    # ------------------------------------------------------------------ utilities
    def sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def time(self, fn, warmup=None, repeats=None):
        warmup = self.warmup if warmup is None else warmup
        repeats = self.repeats if repeats is None else repeats
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times), times

    def peak_mem_gb(self):
        if self.dev.type != "cuda":
            return None
        return round(self.torch.cuda.max_memory_allocated() / 2**30, 2)

    def reset_peak(self):
        if self.dev.type == "cuda":
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def add(self, section, batch, value, unit, median_s, times, **extra):
        anchor = "" if self.smoke else ANCHORS.get((section, batch), "")
        row = dict(section=section, batch=batch, value=value, unit=unit, median_s=median_s,
                   times_s=times, anchor=anchor, peak_mem_gb=self.peak_mem_gb(), **extra)
        self.rows.append(row)
        print(f"  {section:<22} b{batch:<4} {value:10.2f} {unit:<12} ({median_s * 1000:.1f} ms/batch)"
              + (f"   anchor {anchor}" if anchor else ""), flush=True)

    def run_section(self, name, fn):
        print(f"[{name}]", flush=True)
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as e:  # record and go on: one OOM must not lose the other figures
            self.errors[name] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
            print(f"[{name}] FAILED: {self.errors[name]}", flush=True)
        print(f"[{name}] {time.perf_counter() - t0:.1f} s", flush=True)

    # ------------------------------------------------------------------ models
    def build_encoder(self):
        from musilingo.encoders.mert import MERT_330M_CONFIG, TINY_MERT_CONFIG, random_mert

        torch = self.torch
        cfg = TINY_MERT_CONFIG if self.smoke else MERT_330M_CONFIG
        t0 = time.perf_counter()
        with torch.device(self.dev):
            enc = random_mert(cfg, dtype=self.dtype)
        enc = enc.to(self.dev).eval()
        self.sync()
        self.enc = enc
        n = sum(p.numel() for p in enc.parameters())
        print(f"  encoder: {n / 1e6:.0f}M params, init {time.perf_counter() - t0:.1f} s", flush=True)

    def build_llm(self):
        from transformers import LlamaConfig, LlamaForCausalLM

        torch = self.torch
        cfg = LlamaConfig(**(LLAMA_TINY if self.smoke else LLAMA_7B), bos_token_id=1, eos_token_id=2,
                          pad_token_id=0, tie_word_embeddings=False)
        t0 = time.perf_counter()
        prev = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)  # create bf16 parameters directly, on the device
        try:
            with torch.device(self.dev):
                llm = LlamaForCausalLM(cfg)
        finally:
            torch.set_default_dtype(prev)
        llm = llm.to(device=self.dev, dtype=self.dtype).eval().requires_grad_(False)
        self.sync()
        self.llm = llm
        n = sum(p.numel() for p in llm.parameters())
        print(f"  llm: {n / 1e9:.2f}B params, {next(llm.parameters()).dtype}, "
              f"attn {llm.config._attn_implementation}, init {time.perf_counter() - t0:.1f} s", flush=True)
        self.hidden = cfg.hidden_size
        with torch.device(self.dev):
            self.proj = torch.nn.Linear(self.enc.feature_dim, self.hidden).to(self.dtype)
        # the prompt around the audio tokens: ~100 tokens in all for a 10 s clip (3 audio tokens)
        g = torch.Generator().manual_seed(0)
        n_prompt = self.args.prompt_tokens
        n_audio = self.audio_tokens()
        pre, post = n_prompt - n_audio - 7, 7
        ids = torch.randint(3, cfg.vocab_size, (1, pre + post), generator=g).to(self.dev)
        emb = llm.get_input_embeddings()(ids)
        self.pre_emb, self.post_emb = emb[:, :pre], emb[:, pre:]

    def audio_tokens(self):
        import math

        return max(1, math.ceil(self.enc.num_frames(int(SAMPLE_RATE * CLIP_S)) / POOL_WINDOW))

    def audio_batch(self, B):
        torch = self.torch
        g = torch.Generator().manual_seed(B)
        audio = 0.1 * torch.randn(B, int(SAMPLE_RATE * CLIP_S), generator=g)
        if self.dev.type == "cuda":
            audio = audio.pin_memory()
        return audio, torch.full((B,), audio.shape[1], dtype=torch.long)

    def encode(self, audio, lengths):
        """host audio -> device -> MERT -> pooled tokens [B, n, 1024] (as model.pooled_features)."""
        from musilingo.encoders import pool_frames

        a = audio.to(self.dev, non_blocking=True)
        out = self.enc(a, lengths.to(self.dev))
        return pool_frames(out.frames, out.mask, POOL_WINDOW).frames

    def prompt_embeds(self, audio_tokens):
        torch = self.torch
        B = audio_tokens.shape[0]
        a = self.proj(audio_tokens.to(self.proj.weight.dtype)).to(self.dtype)
        emb = torch.cat([self.pre_emb.expand(B, -1, -1), a, self.post_emb.expand(B, -1, -1)], dim=1)
        return emb, torch.ones(emb.shape[:2], dtype=torch.long, device=self.dev)

    def random_prompt(self, B):
        torch = self.torch
        g = torch.Generator().manual_seed(1000 + B)
        feats = torch.randn(B, self.audio_tokens(), self.enc.feature_dim, generator=g).to(self.dev)
        return self.prompt_embeds(feats)

    def generate(self, emb, mask, static=False):
        n = self.args.new_tokens
        kw = dict(inputs_embeds=emb, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                  do_sample=False, pad_token_id=0, eos_token_id=2)
        if static:
            kw["cache_implementation"] = "static"
            from transformers import CompileConfig

            cc = CompileConfig(mode="reduce-overhead", fullgraph=False)
            if self.dev.type != "cuda":
                cc._compile_all_devices = True  # the smoke run exercises the compile path on CPU
            kw["compile_config"] = cc
        with self.torch.no_grad():
            out = self.llm.generate(**kw)
        if out.shape[1] != n:
            raise RuntimeError(f"generated {out.shape[1]} tokens, expected {n}")
        return out

    # ------------------------------------------------------------------ sections
    def sec_mert(self):
        torch = self.torch
        self.reset_peak()
        for B in self.args.mert_batches:
            audio, lengths = self.audio_batch(B)
            with torch.no_grad():
                med, times = self.time(lambda: self.encode(audio, lengths))
            self.add("mert", B, B / med, "clips/s", med, times,
                     audio_s_per_s=B * CLIP_S / med, audio_tokens=self.audio_tokens())

    def sec_llm(self, static=False):
        label = "llm static+compile" if static else "llm eager"
        self.reset_peak()
        batches = self.args.compile_batches if static else self.args.llm_batches
        for B in batches:
            emb, mask = self.random_prompt(B)
            t0 = time.perf_counter()
            self.generate(emb, mask, static)  # first call (compile happens here when static)
            self.sync()
            first = time.perf_counter() - t0
            med, times = self.time(lambda: self.generate(emb, mask, static),
                                   warmup=self.warmup if static else 0)
            self.add(label, B, B / med, "captions/s", med, times, prompt_tokens=int(emb.shape[1]),
                     new_tokens=self.args.new_tokens, tokens_per_s=B * self.args.new_tokens / med,
                     first_call_s=first)

    def sec_pipeline(self, static=False):
        torch = self.torch
        label = "pipeline static+compile" if static else "pipeline eager"
        self.reset_peak()
        for B in self.args.pipeline_batches:
            if static and B not in self.args.compile_batches and not self.args.compile_all_pipeline:
                continue
            audio, lengths = self.audio_batch(B)

            def run():
                with torch.no_grad():
                    emb, mask = self.prompt_embeds(self.encode(audio, lengths))
                    return self.generate(emb, mask, static)
            run()  # first call: may compile / record graphs for this batch size
            med, times = self.time(run, warmup=self.warmup - 1 if not static else self.warmup)
            enc_med, _ = self.time(lambda: self.encode(audio, lengths), warmup=0, repeats=2)
            met = B / med >= TARGET_CAPTIONS_PER_S
            self.add(label, B, B / med, "captions/s", med, times, encoder_share=enc_med / med,
                     meets_target=met, target=TARGET_CAPTIONS_PER_S)

    def fast_decode(self, emb, mask, step=None, static=True):
        """``musilingo.llm.greedy_decode`` of exactly ``--new-tokens`` tokens (no eos)."""
        from musilingo.llm import greedy_decode

        n = self.args.new_tokens
        out = greedy_decode(self.llm, emb, mask, n, [], 0, static_cache=static, decode_step=step)
        if out.shape[1] != n:
            raise RuntimeError(f"generated {out.shape[1]} tokens, expected {n}")
        return out

    def sec_fast(self):
        torch = self.torch
        from musilingo.llm import compiled_decode_step

        compile_ok = not self.smoke or self.args.smoke_compile
        step = compiled_decode_step(self.llm) if compile_ok else None
        self.reset_peak()
        # exactness first: the fast path's tokens against the eager loop on the same inputs
        B = self.args.fast_check_batch
        emb, mask = self.random_prompt(B)
        with torch.no_grad():
            eager = self.fast_decode(emb, mask, static=False)
            static_eager = self.fast_decode(emb, mask, static=True)
            t0 = time.perf_counter()
            fast = self.fast_decode(emb, mask, step)
            self.sync()
            first = time.perf_counter() - t0
            fast2 = self.fast_decode(emb, mask, step)

        def agree(a, b):
            same = (a == b).all(dim=1)
            diff = (a != b).float().argmax(dim=1)  # first differing position (0 when equal)
            return {"rows_identical": int(same.sum()), "rows": int(a.shape[0]),
                    "first_divergence_min": int(diff[~same].min()) if not bool(same.all()) else None}
        check = {"compiled_vs_eager": agree(fast, eager), "static_eager_vs_eager": agree(static_eager, eager),
                 "compiled_vs_static_eager": agree(fast, static_eager),
                 "compiled_repeatable": bool((fast == fast2).all()), "compiled": step is not None}
        frac = check["compiled_vs_eager"]["rows_identical"] / B
        self.add("fast check", B, frac, "rows equal", first, [first], first_call_s=first, **check)
        for B in self.args.fast_batches:
            audio, lengths = self.audio_batch(B)

            def run():
                with torch.no_grad():
                    e, m = self.prompt_embeds(self.encode(audio, lengths))
                    return self.fast_decode(e, m, step)
            t0 = time.perf_counter()
            run()  # first call: records this batch size's CUDA graphs
            self.sync()
            first = time.perf_counter() - t0
            med, times = self.time(run, warmup=1)
            enc_med, _ = self.time(lambda: self.encode(audio, lengths), warmup=0, repeats=2)
            self.add("pipeline fast", B, B / med, "captions/s", med, times, encoder_share=enc_med / med,
                     meets_target=B / med >= FAST_TARGET_CAPTIONS_PER_S,
                     target=FAST_TARGET_CAPTIONS_PER_S, first_call_s=first,
                     tokens_per_s=B * self.args.new_tokens / med, compiled=step is not None)

    def sec_train(self):
        torch = self.torch
        self.reset_peak()
        proj = torch.nn.Linear(self.enc.feature_dim, self.hidden).to(self.dev)  # fp32 master weights
        opt = torch.optim.AdamW(proj.parameters(), lr=1e-4)
        seq = self.args.train_tokens
        n_audio = self.audio_tokens()
        n_answer = 60
        n_pre = seq - n_audio - n_answer
        vocab = self.llm.config.vocab_size
        ac = dict(device_type=self.dev.type, dtype=torch.bfloat16)
        for with_encoder in (False, True):
            if with_encoder and self.args.quick:
                continue
            for B in self.args.train_batches:
                g = torch.Generator().manual_seed(B)
                ids = torch.randint(3, vocab, (B, seq), generator=g).to(self.dev)
                labels = ids.clone()
                labels[:, : n_pre + n_audio] = -100  # loss on the answer tokens only
                mask = torch.ones(B, seq, dtype=torch.long, device=self.dev)
                emb_text = self.llm.get_input_embeddings()(ids)  # frozen: no grad
                feats = torch.randn(B, n_audio, self.enc.feature_dim, generator=g).to(self.dev)
                audio, lengths = self.audio_batch(B) if with_encoder else (None, None)

                def step():
                    if with_encoder:
                        with torch.no_grad():
                            f = self.encode(audio, lengths)
                    else:
                        f = feats
                    opt.zero_grad(set_to_none=True)
                    with torch.autocast(**ac):
                        a = proj(f).to(emb_text.dtype)
                        emb = torch.cat([emb_text[:, :n_pre], a, emb_text[:, n_pre + n_audio:]], dim=1)
                        loss = self.llm(inputs_embeds=emb, attention_mask=mask, labels=labels).loss
                    loss.backward()
                    opt.step()
                    return loss
                med, times = self.time(step)
                assert proj.weight.grad is not None
                self.add("train with MERT" if with_encoder else "train features", B, B / med,
                         "samples/s", med, times, seq_tokens=seq)


def machine_info(args):
    import torch
    import transformers

    info = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
            "transformers": transformers.__version__, "loadavg_before": loadavg()}
    if torch.cuda.is_available() and not args.cpu_smoke:
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_mem_gb=round(p.total_memory / 2**30, 1),
                    capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count)
    return info


def print_table(res):
    m = res["machine"]
    print("\n" + "=" * 110)
    print(f"MusiLingo GPU benchmark  {res['date']}  mode={res['mode']}  device={m.get('gpu', 'CPU (smoke)')}")
    print(f"torch {m['torch']} (CUDA {m['cuda_runtime']})  transformers {m['transformers']}  CPU {m['cpu_model']}"
          f"  load avg before {m['loadavg_before']} after {m.get('loadavg_after')}")
    print("=" * 110)
    print(f"{'section':<26}{'batch':>6}{'value':>11} {'unit':<12}{'ms/batch':>10}{'peak GiB':>10}  anchor / note")
    for r in res["rows"]:
        note = r["anchor"]
        if "meets_target" in r:
            note = (note + " " if note else "") + (f"target {r['target']:.0f}/s: "
                                                   + ("MET" if r["meets_target"] else "not met")
                                                   + f"; encoder {100 * r['encoder_share']:.0f}% of time")
        if r["section"] == "fast check":
            c = r["compiled_vs_eager"]
            note = (f"compiled={r['compiled']}: {c['rows_identical']}/{c['rows']} rows equal to eager"
                    f" (static eager {r['static_eager_vs_eager']['rows_identical']}/{c['rows']}); "
                    f"repeatable {r['compiled_repeatable']}")
        if "first_call_s" in r and (r["section"].endswith("compile") or r["section"].endswith("fast")):
            note = (note + "; " if note else "") + f"first call {r['first_call_s']:.0f} s"
        print(f"{r['section']:<26}{r['batch']:>6}{r['value']:>11.2f} {r['unit']:<12}{r['median_s'] * 1000:>10.1f}"
              f"{(r['peak_mem_gb'] if r['peak_mem_gb'] is not None else float('nan')):>10.1f}  {note}")
    for k, v in res["errors"].items():
        print(f"FAILED {k}: {v}")
    for k in res["skipped"]:
        print(f"skipped: {k}")
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats, no compile, no MERT-in-the-loop training (< 4 min on an H100)")
    ap.add_argument("--no-compile", action="store_true", help="skip the static-cache + compile section")
    ap.add_argument("--mert-batches", type=parse_ints, default=parse_ints("1,8,32"))
    ap.add_argument("--llm-batches", type=parse_ints, default=parse_ints("1,8,32"))
    ap.add_argument("--compile-batches", type=parse_ints, default=parse_ints("1,32,64"),
                    help="batch sizes run with static cache + compile (each records its own graphs)")
    ap.add_argument("--pipeline-batches", type=parse_ints, default=parse_ints("32,64"))
    ap.add_argument("--compile-all-pipeline", action="store_true",
                    help="also run compiled pipeline batches not in --compile-batches")
    ap.add_argument("--train-batches", type=parse_ints, default=parse_ints("8,32"))
    ap.add_argument("--fast-batches", type=parse_ints, default=parse_ints("64,128,256"),
                    help="fast section: end-to-end batch sizes (each records its own CUDA graphs)")
    ap.add_argument("--fast-check-batch", type=int, default=16,
                    help="fast section: batch of the tokens-vs-eager check")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=100, help="prompt length incl. audio tokens")
    ap.add_argument("--train-tokens", type=int, default=103, help="training sequence length")
    ap.add_argument("--repeats", type=int, default=0, help="timed repeats (default 5; 2 with --quick)")
    ap.add_argument("--sections", default="mert,llm,pipeline,train,compile",
                    help="comma-separated subset of mert,llm,pipeline,train,compile,fast")
    ap.add_argument("--json-out", help="write all figures as JSON here")
    ap.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)  # tiny shapes on CPU
    ap.add_argument("--smoke-compile", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA device available (torch.cuda.is_available() is False; torch "
              f"{torch.__version__}, built for CUDA {torch.version.cuda}). This benchmark needs an "
              "NVIDIA GPU (sized for H100/H200); for CPU figures run benchmarks/bench_cpu.py.",
              file=sys.stderr)
        raise SystemExit(2)
    if args.cpu_smoke:
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        args.mert_batches, args.llm_batches = [1, 2], [1, 2]
        args.compile_batches, args.pipeline_batches, args.train_batches = [2], [2, 3], [2]
        args.fast_batches, args.fast_check_batch = [2, 3], 2
        args.new_tokens = min(args.new_tokens, 8)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # equal-length batches: let cuDNN pick conv algorithms
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    do_compile = "compile" in sections and not args.quick and not args.no_compile
    if args.cpu_smoke:
        do_compile = "compile" in sections and args.smoke_compile

    t_start = time.perf_counter()
    res = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "mode": "cpu-smoke" if args.cpu_smoke else ("quick" if args.quick else "full"),
           "args": {k: v for k, v in vars(args).items()}, "machine": machine_info(args),
           "anchors": {f"{k[0]} b{k[1]}": v for k, v in ANCHORS.items()},
           "target_captions_per_s": TARGET_CAPTIONS_PER_S,
           "fast_target_captions_per_s": FAST_TARGET_CAPTIONS_PER_S}
    print(f"mode {res['mode']}; device {res['machine'].get('gpu', 'cpu')}; "
          f"load avg {res['machine']['loadavg_before']}", flush=True)
    b = Bench(args)
    b.run_section("build", lambda: (b.build_encoder(), b.build_llm()))
    if "build" in b.errors:
        raise SystemExit("could not build the models: " + b.errors["build"])
    if "mert" in sections:
        b.run_section("mert", b.sec_mert)
    if "llm" in sections:
        b.run_section("llm", b.sec_llm)
    if "pipeline" in sections:
        b.run_section("pipeline", b.sec_pipeline)
    if "train" in sections:
        b.run_section("train", b.sec_train)
    if "fast" in sections:
        b.run_section("fast", b.sec_fast)
    skipped = []
    if do_compile:  # last: CUDA graphs recorded here must not meet the eager training step
        b.run_section("llm static+compile", lambda: b.sec_llm(static=True))
        if "pipeline" in sections:
            b.run_section("pipeline static+compile", lambda: b.sec_pipeline(static=True))
    elif "compile" in sections:
        skipped.append("static cache + torch.compile (--quick / --no-compile)")
    res["machine"]["loadavg_after"] = loadavg()
    res["rows"], res["errors"], res["skipped"] = b.rows, b.errors, skipped
    res["total_s"] = time.perf_counter() - t_start
    print_table(res)
    print(f"total {res['total_s']:.0f} s")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(res, indent=2, default=str) + "\n")
        print(f"wrote {args.json_out}")
    if b.errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
