#!/usr/bin/env python
"""The lean decode path against today's path on CPU, every ratio measured in one run (issue 18).

Paths (one model, one process; the decoding copies are made once and swapped in):

* ``reference``  transformers' ``generate()`` on the LLM as loaded (LoRA unmerged, float32) =
                 ``InferenceConfig(fast_decode=False)``, what every release before this one ran
* ``fast-PREC``  ``llm.greedy_decode`` on the decoding copy (LoRA merged) in PREC = float32,
                 bfloat16, int8, int8-dynamic (``InferenceConfig(precision=PREC)``)
* ``cpp-PREC``   runtime llama.cpp: the decoding copy as a GGUF (float32 -> F32, bfloat16 -> BF16,
                 int8 -> Q8_0) decoded by llama.cpp (``InferenceConfig(runtime="llama.cpp",
                 precision=PREC)``; needs llama-cpp-python); ask for it as ``cpp-int8`` etc.

Figures (timed repeats interleaved path by path, so a change of machine load hits every path
alike; medians):

* bandwidth  a memory-bandwidth probe: ``torch`` copy of a large float32 array (read + write bytes)
* decode     batch-1 LLM decoding of a fixed token count from a 10 s clip's caption prompt: ms per
             token after the prefill, tokens/s, the weight bytes each token reads and the
             bandwidth roofline (probe GB/s / bytes per token) with the share of it reached
* caption    warm ``model.caption`` of one 10 s clip (decode + encode + generate), with the
             encoder's share measured apart
* batch      ``model.caption`` of 8 clips with ``batch_size=8`` vs ``batch_size=1``

Usage::

    .venv/bin/python benchmarks/bench_fast_decode.py --json-out benchmarks/results/cpu-fast-decode.json
    .venv/bin/python benchmarks/bench_fast_decode.py --model tiny --repeats 1 --tokens 8   # smoke

The load average is stored with every section: on a shared machine the absolute figures are slower
than the machine can do; the ratios within one run are the comparable figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cpu import write_clip  # noqa: E402  (benchmarks/ is not a package)
from machine import cpu_model, loadavg  # noqa: E402

PRECISIONS = ("float32", "bfloat16", "int8", "int8-dynamic")


def bandwidth_probe(mb: int = 512, repeats: int = 5) -> dict:
    """GB/s of a large float32 ``copy_`` (bytes read + bytes written), best and median."""
    import torch

    n = mb * 1024 * 1024 // 4
    a, b = torch.ones(n), torch.empty(n)
    b.copy_(a)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        b.copy_(a)
        times.append(time.perf_counter() - t0)
    moved = 2 * n * 4
    return {"array_mb": mb, "best_gb_s": moved / min(times) / 1e9,
            "median_gb_s": moved / statistics.median(times) / 1e9, "threads": torch.get_num_threads()}


def weight_bytes_per_token(llm) -> int:
    """Bytes of weights one batch-1 decode step reads: every Linear (quantised or not, lm_head
    included) plus the norms; the input embedding reads one row (left out)."""
    import torch
    from torch import nn

    from musilingo.llm import Int8WeightLinear

    if not isinstance(llm, nn.Module):  # runtime llama.cpp: every tensor of its GGUF (the tied
        import gguf                     # embedding is the output matrix, read whole)

        return sum(int(t.n_bytes) for t in gguf.GGUFReader(llm.path).tensors)
    total = 0
    for mod in llm.modules():
        if isinstance(mod, Int8WeightLinear):
            total += mod.weight_int8.numel() + mod.scale.numel() * mod.scale.element_size()
        elif isinstance(mod, nn.Linear):
            total += mod.weight.numel() * mod.weight.element_size()
        elif hasattr(mod, "weight") and callable(mod.weight) and "quantized" in type(mod).__module__:
            w = mod.weight()
            total += w.numel() * w.element_size()
        elif isinstance(mod, nn.Module) and type(mod).__name__.endswith("RMSNorm"):
            total += sum(p.numel() * p.element_size() for p in mod.parameters(recurse=False))
    del torch
    return total


class Paths:
    """The reference path and the fast paths of one model, swapped in by name."""

    def __init__(self, model, precisions):
        from musilingo.config import InferenceConfig

        self.model = model
        self.cfg = {"reference": (InferenceConfig(fast_decode=False), None)}
        for p in precisions:
            runtime = "llama.cpp" if p.startswith("cpp-") else "torch"
            model.config.inference = InferenceConfig(fast_decode=True, precision=p.removeprefix("cpp-"),
                                                     runtime=runtime)
            model.prepare_inference()
            self.cfg[p if runtime == "llama.cpp" else f"fast-{p}"] = (model.config.inference,
                                                                      model.decode_llm)
        self.names = list(self.cfg)

    def use(self, name: str):
        cfg, llm = self.cfg[name]
        self.model.config.inference = cfg
        # the copy made for this path by prepare_inference() above (benchmark-only swap)
        object.__setattr__(self.model, "_decode_llm", llm)
        return self.model.llm if llm is None else llm


def interleaved(names, fn, repeats):
    """Run ``fn(name)`` ``repeats`` rounds, one call per name per round; per name the times."""
    times = {n: [] for n in names}
    results = {}
    for _ in range(repeats):
        for n in names:
            t0 = time.perf_counter()
            results[n] = fn(n)
            times[n].append(time.perf_counter() - t0)
    return times, results


def bench_decode(paths: Paths, feats10, args) -> dict:
    import torch

    from musilingo.llm import greedy_decode, input_dtype
    from musilingo.prompts import CAPTION_INSTRUCTION, Turn

    model = paths.model
    batch = model.build_inputs([feats10], [[Turn(CAPTION_INSTRUCTION)]])
    pad = model.tokenizer.pad_token_id

    def run(name, n):
        llm = paths.use(name)
        if name == "reference":
            with torch.no_grad():
                return model.llm.generate(inputs_embeds=batch["inputs_embeds"],
                                          attention_mask=batch["attention_mask"], max_new_tokens=n,
                                          min_new_tokens=n, do_sample=False, pad_token_id=pad,
                                          temperature=None, top_p=None, top_k=None)
        if name.startswith("cpp-"):
            return llm.greedy_decode(batch["inputs_embeds"], batch["attention_mask"], n, [], pad)
        return greedy_decode(llm, batch["inputs_embeds"].to(input_dtype(llm)),
                             batch["attention_mask"], n, [], pad)

    for name in paths.names:  # warm-up
        run(name, 2)
    n = args.tokens
    t_pre, _ = interleaved(paths.names, lambda name: run(name, 1), args.repeats)
    t_all, outs = interleaved(paths.names, lambda name: run(name, n), args.repeats)
    out = {"prompt_tokens": int(batch["attention_mask"].shape[1]), "new_tokens": n,
           "loadavg": loadavg(), "paths": {}}
    for name in paths.names:
        pre, tot = statistics.median(t_pre[name]), statistics.median(t_all[name])
        step = max(1e-9, tot - pre) / (n - 1)
        llm = paths.use(name)
        wb = weight_bytes_per_token(llm)
        out["paths"][name] = {"prefill_s": pre, "total_s": tot, "ms_per_token": 1000 * step,
                              "tokens_per_s": 1 / step, "weight_mb_per_token": wb / 1e6,
                              "total_times_s": t_all[name],
                              "first_tokens": outs[name][0, :12].tolist()}
    ref = out["paths"]["reference"]["tokens_per_s"]
    for v in out["paths"].values():
        v["x_reference"] = v["tokens_per_s"] / ref
    return out


def bench_caption(paths: Paths, clip10: Path, args) -> dict:
    from musilingo.prompts import CAPTION_INSTRUCTION  # noqa: F401 (caption uses it)

    model = paths.model

    def run(name):
        paths.use(name)
        return model.caption(str(clip10))

    interleaved(paths.names, run, 1)  # warm
    times, answers = interleaved(paths.names, run, args.repeats)
    _, samples = model.load(str(clip10))
    enc_times, _ = interleaved(["encode"], lambda _: model.pooled_features([samples]), args.repeats)
    out = {"clip_s": 10.0, "loadavg": loadavg(), "encode_s": statistics.median(enc_times["encode"]),
           "paths": {}}
    if model.config.facts:  # the measured-facts analysis a caption runs beside the encoder
        ana_times, _ = interleaved(["analysis"], lambda _: model.feature_spec.measure([samples]),
                                   args.repeats)
        out["analysis_s"] = statistics.median(ana_times["analysis"])
    for name in paths.names:
        med = statistics.median(times[name])
        out["paths"][name] = {"median_s": med, "times_s": times[name], "text": answers[name].text}
    ref = out["paths"]["reference"]["median_s"]
    for v in out["paths"].values():
        v["x_reference"] = ref / v["median_s"]
        v["encoder_share"] = out["encode_s"] / v["median_s"]
    return out


def profile_paths(paths: Paths, feats10, names, top: int = 12) -> dict:
    """torch profiler over one batch-1 ``model.generate`` of the caption per path: where the
    time goes (self CPU time per op, as a share of the profiled wall time)."""
    from torch.profiler import ProfilerActivity, profile

    from musilingo.prompts import CAPTION_INSTRUCTION, Turn

    model = paths.model
    conv = [[Turn(CAPTION_INSTRUCTION)]]
    out = {"loadavg": loadavg(), "paths": {}}
    for name in names:
        paths.use(name)
        model.generate([feats10], conv)  # warm
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.generate([feats10], conv)
        wall = time.perf_counter() - t0
        rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        out["paths"][name] = {"wall_s": wall, "top_ops": [
            {"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1000,
             "pct_of_wall": 100 * e.self_cpu_time_total / 1e6 / wall} for e in rows[:top]]}
    return out


def bench_batch(paths: Paths, clips: list[Path], args) -> dict:
    model = paths.model
    out = {"clips": len(clips), "batch_size": args.batch, "loadavg": loadavg(), "paths": {}}
    for name in args.batch_paths:
        paths.use(name)
        model.caption([str(c) for c in clips[:2]], batch_size=2)  # warm
        t0 = time.perf_counter()
        batched = model.caption([str(c) for c in clips], batch_size=args.batch)
        t_batch = time.perf_counter() - t0
        t0 = time.perf_counter()
        single = model.caption([str(c) for c in clips], batch_size=1)
        t_single = time.perf_counter() - t0
        out["paths"][name] = {
            "batched_s": t_batch, "one_by_one_s": t_single, "x_batched": t_single / t_batch,
            "clips_per_s_batched": len(clips) / t_batch,
            "same_texts": [a.text for a in batched] == [b.text for b in single]}
    out["loadavg_after"] = loadavg()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="preset or model folder (default: default)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed rounds (median)")
    ap.add_argument("--tokens", type=int, default=64, help="fixed new tokens of the decode figure")
    ap.add_argument("--precisions", default=",".join(PRECISIONS),
                    help="fast paths to measure (comma-separated float32,bfloat16,int8,int8-dynamic; "
                         "cpp-float32,cpp-bfloat16,cpp-int8 for runtime llama.cpp)")
    ap.add_argument("--batch", type=int, default=8, help="clips of the batch figure (default 8)")
    ap.add_argument("--batch-paths", default="reference,fast-float32",
                    help="paths of the batch-vs-one-by-one figure (comma-separated)")
    ap.add_argument("--skip", default="", help="sections to skip: decode,caption,batch")
    ap.add_argument("--profile", default="",
                    help="paths to profile (torch profiler, one batch-1 caption each), e.g. "
                         "reference,fast-int8")
    ap.add_argument("--json-out", help="write the figures here (after every section)")
    args = ap.parse_args(argv)
    args.batch_paths = [p for p in args.batch_paths.split(",") if p]
    skip = set(args.skip.split(","))

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from musilingo.model import MusiLingo

    res = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "model": args.model,
           "args": vars(args),
           "machine": {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
                       "python": platform.python_version(), "torch": torch.__version__,
                       "transformers": transformers.__version__, "threads": torch.get_num_threads(),
                       "loadavg_before": loadavg()}}

    def save():
        if args.json_out:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps(res, indent=2) + "\n")

    print(f"load average {loadavg()}; bandwidth probe ...", flush=True)
    res["bandwidth"] = bandwidth_probe()
    model = MusiLingo.from_pretrained(args.model, device="cpu", fast_decode=False)
    paths = Paths(model, [p for p in args.precisions.split(",") if p])
    with tempfile.TemporaryDirectory(prefix="musilingo-fast-") as tmp:
        clips = [write_clip(Path(tmp) / f"c{i}.ogg", 10.0, seed=100 + i) for i in range(args.batch)]
        _, clip10 = model.load(str(clips[0]))
        feats10 = model.pooled_features([clip10])[0]
        if "decode" not in skip:
            print("[decode] ...", flush=True)
            res["decode"] = d = bench_decode(paths, feats10, args)
            bw = res["bandwidth"]["best_gb_s"] * 1e9
            for v in d["paths"].values():
                v["roofline_tokens_per_s"] = bw / (v["weight_mb_per_token"] * 1e6)
                v["share_of_roofline"] = v["tokens_per_s"] / v["roofline_tokens_per_s"]
            save()
        if "caption" not in skip:
            print("[caption] ...", flush=True)
            res["caption"] = bench_caption(paths, clips[0], args)
            save()
        if args.profile:
            print("[profile] ...", flush=True)
            res["profile"] = profile_paths(paths, feats10, args.profile.split(","))
            save()
        if "batch" not in skip:
            print("[batch] ...", flush=True)
            res["batch"] = bench_batch(paths, clips, args)
            save()
    res["machine"]["loadavg_after"] = loadavg()
    save()
    report(res)


def report(res: dict) -> None:
    m = res["machine"]
    print(f"\n{res['date']}  model={res['model']}  {m['cpu_model']} ({m['cpu_count']} logical)  "
          f"threads {m['threads']}  load {m['loadavg_before']} -> {m.get('loadavg_after')}")
    bw = res["bandwidth"]
    print(f"bandwidth probe: {bw['best_gb_s']:.1f} GB/s best, {bw['median_gb_s']:.1f} median "
          f"({bw['array_mb']} MB float32 copy)")
    if "decode" in res:
        d = res["decode"]
        print(f"\n[decode] batch 1, {d['new_tokens']} new tokens after a {d['prompt_tokens']}-token "
              f"prompt (load {d['loadavg']})")
        print(f"  {'path':<16}{'ms/token':>10}{'tok/s':>8}{'x ref':>7}{'MB/token':>10}"
              f"{'roofline tok/s':>16}{'of roofline':>13}")
        for k, v in d["paths"].items():
            print(f"  {k:<16}{v['ms_per_token']:>10.1f}{v['tokens_per_s']:>8.1f}{v['x_reference']:>7.2f}"
                  f"{v['weight_mb_per_token']:>10.0f}{v['roofline_tokens_per_s']:>16.0f}"
                  f"{100 * v['share_of_roofline']:>12.0f}%")
    if "caption" in res:
        c = res["caption"]
        print(f"\n[caption] warm model.caption of one 10 s clip (load {c['loadavg']}); "
              f"encoder alone {c['encode_s']:.2f} s"
              + (f", analysis alone {c['analysis_s']:.2f} s" if "analysis_s" in c else ""))
        for k, v in c["paths"].items():
            print(f"  {k:<16}{v['median_s']:>8.2f} s  x{v['x_reference']:.2f}  {v['text'][:70]!r}")
    for k, v in res.get("profile", {}).get("paths", {}).items():
        print(f"\n[profile] {k}: one caption, {v['wall_s']:.2f} s profiled; top ops by self time")
        for o in v["top_ops"][:8]:
            print(f"  {o['op']:<48}{o['calls']:>7}{o['self_ms']:>10.0f} ms{o['pct_of_wall']:>6.0f}%")
    if "batch" in res:
        b = res["batch"]
        print(f"\n[batch] {b['clips']} x 10 s clips, batch {b['batch_size']} vs one by one "
              f"(load {b['loadavg']} -> {b['loadavg_after']})")
        for k, v in b["paths"].items():
            print(f"  {k:<16}{v['batched_s']:>8.2f} s vs {v['one_by_one_s']:.2f} s  "
                  f"x{v['x_batched']:.2f}  same texts: {v['same_texts']}")


if __name__ == "__main__":
    main()
