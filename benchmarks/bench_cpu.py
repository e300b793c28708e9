#!/usr/bin/env python
"""CPU benchmark of the MusiLingo pipeline, stage by stage (prints measured figures; not a test).

Stages, for one preset (``--model``, default ``default``):

* load     model construction from a preset/folder: cold (first load in a fresh process, imports
           timed separately) and warm (a second load in that same process), via a subprocess, plus
           the load in this process
* decode   ``model.load``: file decode + downmix + resample to the encoder rate, for the shipped
           example clip and for generated 10 s / 30 s clips (44.1 kHz stereo Ogg Vorbis)
* encode   encoder + time pooling (``model.pooled_features``), seconds of audio per second, for
           10 s and 30 s clips alone and 10 s clips in a batch; per-child times for composites
* generate ``model.generate`` as shipped (greedy, config max_new_tokens, stop strings) at batch 1,
           and raw LLM decoding of a fixed token count (prefill, tokens/s) at batch 1 and the batch size
* caption  end-to-end ``model.caption`` of N generated 10 s clips: batched vs one by one (clips/s)

Usage::

    .venv/bin/python benchmarks/bench_cpu.py                    # default preset, 16 clips
    .venv/bin/python benchmarks/bench_cpu.py --model tiny --clips 8 --json-out /tmp/cpu.json
    .venv/bin/python benchmarks/bench_cpu.py --profile          # + torch profiler of one generate

The load average is printed before and after: on a shared machine, figures taken under load are
slower than the machine can do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from machine import cpu_model, loadavg  # benchmarks/machine.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------- helpers


def timed(fn, repeats: int = 3, warmup: int = 0):
    """Run ``fn`` warmup + repeats times; return (median seconds, all times, last result)."""
    res = None
    for _ in range(warmup):
        res = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, res


def synth_clip(seconds: float, sr: int = 44100, seed: int = 0, stereo: bool = True):
    """A music-like test signal: a chord progression of harmonic tones plus a drum-ish pulse."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    bpm = rng.uniform(70, 150)
    beat = 60.0 / bpm
    roots = 110.0 * 2 ** (rng.integers(0, 12, size=max(1, int(seconds / (4 * beat)) + 1)) / 12)
    y = np.zeros(n, dtype=np.float64)
    bar = (t // (4 * beat)).astype(int)
    for interval in (0, 4, 7):  # a major triad on each bar's root
        f = roots[bar] * 2 ** (interval / 12)
        phase = 2 * np.pi * np.cumsum(f) / sr
        for h in (1, 2, 3):
            y += np.sin(h * phase) / (h * 3)
    env = np.exp(-((t % beat) / 0.05))  # percussive pulse on each beat
    y += 0.5 * env * rng.standard_normal(n)
    y *= 0.25 / max(1e-9, np.abs(y).max())
    y = y.astype(np.float32)
    if stereo:
        return np.stack([y, np.roll(y, 37)], axis=1), sr
    return y, sr


def write_clip(path: Path, seconds: float, seed: int) -> Path:
    import soundfile as sf

    y, sr = synth_clip(seconds, seed=seed)
    sf.write(str(path), y, sr, format="OGG", subtype="VORBIS")
    return path


def fmt(x, nd=3):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


# ---------------------------------------------------------------------------------------- load probe
def load_probe(model_name: str, threads: int) -> None:
    """Run in a fresh subprocess: time imports, a first (cold) and a second (warm) load."""
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    from musilingo.model import MusiLingo

    t_import = time.perf_counter() - t0
    from musilingo.llm import SMOLLM2, cache_dir

    converted_before = (cache_dir() / "llm" / SMOLLM2 / "config.json").is_file()
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    m = MusiLingo.from_pretrained(model_name, device="cpu")
    t1 = time.perf_counter() - t0
    del m
    t0 = time.perf_counter()
    m = MusiLingo.from_pretrained(model_name, device="cpu")
    t2 = time.perf_counter() - t0
    print("PROBE " + json.dumps({"import_s": t_import, "cold_load_s": t1, "warm_load_s": t2,
                                 "smollm2_plain_copy_existed": converted_before}))


# ---------------------------------------------------------------------------------------- stages
def bench_load(args, results):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_load-probe", "--model", args.model,
           "--threads", str(args.threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    wall = time.perf_counter() - t0
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
    if proc.returncode != 0 or not line:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"load probe failed (exit {proc.returncode})")
    probe = json.loads(line[0][6:])
    probe["subprocess_wall_s"] = wall
    results["load"] = probe


def bench_decode(model, clips: dict, args, results):
    out = {}
    for name, path in clips.items():
        med, times, (_, samples) = timed(lambda p=path: model.load(str(p)), repeats=args.repeats, warmup=1)
        dur = len(samples) / model.encoder.sample_rate
        out[name] = {"audio_s": dur, "median_s": med, "times_s": times, "x_realtime": dur / med}
    results["decode"] = out


def bench_encode(model, clip10, clip30, args, results):
    import numpy as np
    import torch

    from musilingo.encoders import pool_frames

    out = {}
    cases = [("10s x1", [clip10]), ("30s x1", [clip30]),
             (f"10s x{args.batch}", [np.roll(clip10, 997 * i) for i in range(args.batch)])]
    for name, batch in cases:
        med, times, feats = timed(lambda b=batch: model.pooled_features(b), repeats=args.repeats, warmup=1)
        secs = sum(len(c) for c in batch) / model.encoder.sample_rate
        out[name] = {"audio_s": secs, "median_s": med, "times_s": times, "audio_s_per_s": secs / med,
                     "tokens_per_clip": int(feats[0].shape[0]), "feature_dim": int(feats[0].shape[1])}
    # per child (composite encoders): each child on its own input rate, one 10 s clip
    children = getattr(model.encoder, "encoders", None)
    if children:
        from musilingo.audio import resample

        per = {}
        for enc in children:
            x = resample(clip10, model.encoder.sample_rate, enc.sample_rate)
            a = torch.from_numpy(np.ascontiguousarray(x))[None]
            n = torch.tensor([a.shape[1]])
            with torch.no_grad():
                med, _, _ = timed(lambda e=enc, a=a, n=n: e(a, n), repeats=args.repeats, warmup=1)
            per[type(enc).__name__] = {"median_s_10s": med, "audio_s_per_s": 10.0 / med}
        out["children_10s"] = per
    # pooling alone (it is part of the figures above)
    with torch.no_grad():
        o = model.encoder(torch.from_numpy(clip10)[None], torch.tensor([len(clip10)]))
        med, _, _ = timed(lambda: pool_frames(o.frames, o.mask, model.config.pool_window), repeats=5)
    out["pool_only_10s_s"] = med
    results["encode"] = out


class GenerateRecorder:
    """Wrap ``model.llm.generate`` to record the output token tensors (to count tokens)."""

    def __init__(self, model):
        self.model, self.outputs = model, []
        self.orig = model.llm.generate

    def __enter__(self):
        def wrapped(*a, **k):
            out = self.orig(*a, **k)
            self.outputs.append(out)
            return out
        self.model.llm.generate = wrapped
        return self

    def __exit__(self, *exc):
        del self.model.llm.generate  # back to the class method

    def tokens(self) -> tuple[int, int]:
        """(generated tokens without padding, decode steps) over all recorded calls."""
        pad = self.model.tokenizer.pad_token_id
        eos = self.model.tokenizer.eos_token_id
        toks = steps = 0
        for out in self.outputs:
            steps += out.shape[1]
            for row in out.tolist():
                n = 0
                for t in row:
                    n += 1
                    if t in (eos, pad):
                        break
                toks += n
        return toks, steps


def bench_generate(model, feats10, args, results):
    import torch

    from musilingo.prompts import CAPTION_INSTRUCTION, Turn

    out = {}
    conv = [Turn(CAPTION_INSTRUCTION)]
    # as shipped: model.generate (greedy, the preset's max_new_tokens, stop strings)
    for bs in sorted({1, args.batch}):
        with GenerateRecorder(model) as rec:
            med, times, texts = timed(lambda b=bs: model.generate([feats10] * b, [conv] * b),
                                      repeats=args.repeats if bs == 1 else max(1, args.repeats - 1))
        toks, steps = rec.tokens()
        calls = len(rec.outputs)
        out[f"model.generate b{bs}"] = {
            "median_s": med, "times_s": times, "per_caption_s": med / bs,
            "tokens_per_caption": toks / calls / bs, "decode_steps": steps / calls,
            "tokens_per_s": toks / calls / med, "steps_per_s": steps / calls / med,
            "max_new_tokens": model.config.max_new_tokens, "sample_text": texts[0][:120]}
    # raw LLM: fixed token count, no stop strings (pure prefill + decode speed)
    batch1 = model.build_inputs([feats10], [conv], padding_side="left")
    prompt_len = int(batch1["attention_mask"].shape[1])
    pad = model.tokenizer.pad_token_id
    for bs in sorted({1, args.batch}):
        emb = batch1["inputs_embeds"].expand(bs, -1, -1).contiguous()
        attn = batch1["attention_mask"].expand(bs, -1).contiguous()

        def gen(n, emb=emb, attn=attn):
            with torch.no_grad():
                return model.llm.generate(inputs_embeds=emb, attention_mask=attn, max_new_tokens=n,
                                          min_new_tokens=n, do_sample=False, pad_token_id=pad,
                                          temperature=None, top_p=None, top_k=None)
        t_pre, _, _ = timed(lambda: gen(1), repeats=args.repeats, warmup=1)
        n = args.decode_tokens
        t_all, _, o = timed(lambda: gen(n), repeats=max(1, args.repeats - 1))
        assert o.shape[1] == n, o.shape
        out[f"raw decode b{bs}"] = {
            "prompt_tokens": prompt_len, "new_tokens": n, "prefill_s": t_pre, "total_s": t_all,
            "decode_tokens_per_s": bs * (n - 1) / max(1e-9, t_all - t_pre),
            "tokens_per_s_incl_prefill": bs * n / t_all, "ms_per_step": 1000 * (t_all - t_pre) / (n - 1)}
    results["generate"] = out


def bench_caption(model, paths, args, results):
    out = {}
    for label, bs in ((f"batched (batch {args.batch})", args.batch), ("one by one", 1)):
        with GenerateRecorder(model) as rec:
            t0 = time.perf_counter()
            answers = model.caption([str(p) for p in paths], batch_size=bs)
            wall = time.perf_counter() - t0
        toks, _ = rec.tokens()
        errs = [a.error for a in answers if a.error]
        out[label] = {"clips": len(paths), "batch_size": bs, "wall_s": wall, "clips_per_s": len(paths) / wall,
                      "s_per_clip": wall / len(paths), "generated_tokens": toks, "errors": errs}
    results["caption"] = out


def profile_generate(model, feats10, results, top: int = 15):
    import torch
    from torch.profiler import ProfilerActivity, profile

    from musilingo.prompts import CAPTION_INSTRUCTION, Turn

    conv = [Turn(CAPTION_INSTRUCTION)]
    model.generate([feats10], [conv])  # warm
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.generate([feats10], [conv])
    wall = time.perf_counter() - t0
    ka = prof.key_averages()
    rows = sorted(ka, key=lambda e: e.self_cpu_time_total, reverse=True)
    total_self_us = sum(e.self_cpu_time_total for e in ka)
    table = [{"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1000,
              "pct_of_wall": 100 * e.self_cpu_time_total / 1e6 / wall} for e in rows[:top]]
    results["profile_generate_b1"] = {"wall_s_profiled": wall, "aten_self_total_ms": total_self_us / 1000,
                                      "top_ops": table}
    del torch


# ---------------------------------------------------------------------------------------- report
def print_report(r):
    m = r["machine"]
    print("\n" + "=" * 96)
    print(f"MusiLingo CPU benchmark  {r['date']}  preset={r['model']}")
    print(f"CPU: {m['cpu_model']} ({m['cpu_count']} logical)  torch {m['torch']}  transformers "
          f"{m['transformers']}  torch threads {m['torch_threads']}")
    print(f"load average before {m['loadavg_before']}  after {m['loadavg_after']}")
    print("=" * 96)
    if "load" in r:
        L = r["load"]
        print("\n[load]  (subprocess: imports, then two loads in the same process)")
        print(f"  imports {L['import_s']:.2f} s | cold load {L['cold_load_s']:.2f} s | warm load "
              f"{L['warm_load_s']:.2f} s | load in main process {r.get('main_load_s', 0):.2f} s"
              f" | SmolLM2 plain copy existed before: {L['smollm2_plain_copy_existed']}")
    print("\n[decode]  model.load = decode + downmix + resample to the encoder rate")
    print(f"  {'clip':<34}{'audio s':>9}{'median s':>11}{'x realtime':>12}")
    for k, v in r["decode"].items():
        print(f"  {k:<34}{v['audio_s']:>9.1f}{v['median_s']:>11.4f}{v['x_realtime']:>12.0f}")
    e = r["encode"]
    print("\n[encode]  encoder + pooling (model.pooled_features)")
    print(f"  {'case':<34}{'audio s':>9}{'median s':>11}{'audio s/s':>12}{'tokens':>8}{'dim':>7}")
    for k, v in e.items():
        if isinstance(v, dict) and "audio_s" in v:
            print(f"  {k:<34}{v['audio_s']:>9.1f}{v['median_s']:>11.3f}{v['audio_s_per_s']:>12.1f}"
                  f"{v['tokens_per_clip']:>8}{v['feature_dim']:>7}")
    for k, v in e.get("children_10s", {}).items():
        print(f"    child {k:<28}{10.0:>9.1f}{v['median_s_10s']:>11.3f}{v['audio_s_per_s']:>12.1f}")
    print(f"    pooling alone (10 s): {1000 * e['pool_only_10s_s']:.2f} ms")
    print("\n[generate]")
    print(f"  {'case':<24}{'median s':>10}{'s/caption':>11}{'tok/caption':>12}{'steps':>7}{'tok/s':>9}")
    for k, v in r["generate"].items():
        if k.startswith("model.generate"):
            print(f"  {k:<24}{v['median_s']:>10.3f}{v['per_caption_s']:>11.3f}{v['tokens_per_caption']:>12.1f}"
                  f"{v['decode_steps']:>7.0f}{v['tokens_per_s']:>9.1f}")
    print(f"  {'raw LLM, fixed length':<24}{'prompt':>8}{'new':>6}{'prefill s':>11}{'ms/step':>9}"
          f"{'decode tok/s':>14}{'tok/s incl prefill':>20}")
    for k, v in r["generate"].items():
        if k.startswith("raw"):
            print(f"  {k:<24}{v['prompt_tokens']:>8}{v['new_tokens']:>6}{v['prefill_s']:>11.3f}"
                  f"{v['ms_per_step']:>9.1f}{v['decode_tokens_per_s']:>14.1f}{v['tokens_per_s_incl_prefill']:>20.1f}")
    if "caption" in r:  # absent with --skip-caption
        print("\n[caption]  model.caption of N generated 10 s Ogg clips (decode + encode + generate)")
        print(f"  {'mode':<24}{'clips':>6}{'wall s':>9}{'clips/s':>9}{'s/clip':>8}{'tokens':>8}")
        for k, v in r["caption"].items():
            print(f"  {k:<24}{v['clips']:>6}{v['wall_s']:>9.1f}{v['clips_per_s']:>9.3f}"
                  f"{v['s_per_clip']:>8.2f}{v['generated_tokens']:>8}")
    if "profile_generate_b1" in r:
        p = r["profile_generate_b1"]
        print(f"\n[profile]  one model.generate at batch 1: {p['wall_s_profiled']:.2f} s wall (profiled), "
              f"aten self time {p['aten_self_total_ms']:.0f} ms")
        for row in p["top_ops"]:
            print(f"  {row['op'][:44]:<46}{row['calls']:>7}{row['self_ms']:>10.1f} ms{row['pct_of_wall']:>7.1f}%")
    print()


def checkpoint(results, args):
    """Write the figures so far (a long run stopped part-way keeps what it measured)."""
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")


# ---------------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="preset (default, tiny, paper) or model folder")
    ap.add_argument("--clips", type=int, default=16, help="10 s clips captioned end to end (default 16)")
    ap.add_argument("--batch", type=int, default=8, help="batch size for the batched figures (default 8)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per figure (median; default 3)")
    ap.add_argument("--decode-tokens", type=int, default=64, help="fixed new tokens for the raw LLM figure")
    ap.add_argument("--skip-load", action="store_true", help="skip the cold/warm load subprocess")
    ap.add_argument("--skip-caption", action="store_true", help="skip the end-to-end clips/s figure")
    ap.add_argument("--profile", action="store_true", help="torch profiler over one batch-1 generate")
    ap.add_argument("--json-out", help="write all figures as JSON here")
    ap.add_argument("--_load-probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._load_probe:
        load_probe(args.model, args.threads)
        return

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    results = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "model": args.model,
        "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "machine": {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__,
                    "torch_threads": torch.get_num_threads(), "loadavg_before": loadavg()},
    }
    print(f"load average before: {results['machine']['loadavg_before']}", flush=True)

    if not args.skip_load:
        print("[load] cold/warm load in a subprocess ...", flush=True)
        bench_load(args, results)
        checkpoint(results, args)

    from musilingo.model import MusiLingo

    t0 = time.perf_counter()
    model = MusiLingo.from_pretrained(args.model, device="cpu")
    results["main_load_s"] = time.perf_counter() - t0
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="musilingo-bench-") as tmp:
        tmp = Path(tmp)
        example = ROOT / "src" / "musilingo" / "assets" / "example.ogg"
        clips = {}
        if example.is_file():
            clips["example.ogg (shipped)"] = example
        clips["generated 10 s (44.1k stereo ogg)"] = write_clip(tmp / "gen10.ogg", 10.0, seed=1)
        clips["generated 30 s (44.1k stereo ogg)"] = write_clip(tmp / "gen30.ogg", 30.0, seed=2)
        print("[decode] ...", flush=True)
        bench_decode(model, clips, args, results)
        checkpoint(results, args)

        _, clip10 = model.load(str(clips["generated 10 s (44.1k stereo ogg)"]))
        _, clip30 = model.load(str(clips["generated 30 s (44.1k stereo ogg)"]))
        print("[encode] ...", flush=True)
        bench_encode(model, clip10, clip30, args, results)
        checkpoint(results, args)

        feats10 = model.pooled_features([clip10])[0]
        print("[generate] ...", flush=True)
        bench_generate(model, feats10, args, results)
        checkpoint(results, args)

        if not args.skip_caption:
            paths = [write_clip(tmp / f"c{i:03d}.ogg", 10.0, seed=100 + i) for i in range(args.clips)]
            print(f"[caption] {args.clips} clips, batched and one by one ...", flush=True)
            bench_caption(model, paths, args, results)
            checkpoint(results, args)
        if args.profile:
            print("[profile] ...", flush=True)
            profile_generate(model, feats10, results)

    results["machine"]["loadavg_after"] = loadavg()
    print_report(results)
    checkpoint(results, args)
    if args.json_out:
        print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
