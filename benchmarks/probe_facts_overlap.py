"""Probe (issue 18): does measuring the facts beside other work make the grounded default faster
on this CPU? Two experiments in one process, interleaved rounds, the shipped code as baseline:

- single: one warm caption of a 10 s clip; ``sequential`` (as shipped: facts measured, then the
  encoder) against ``beside-encoder`` (the analysis on a second thread while the encoder runs);
- groups: 8 clips of 10 s captioned in groups of ``--group`` (2); ``sequential`` (as shipped)
  against ``pipelined`` (the next group's facts measured on a background thread while this group
  is encoded and answered).

The variants are patched in from here; the library keeps the sequential code. Texts are compared.

Usage: .venv/bin/python benchmarks/probe_facts_overlap.py [--repeats 5] [--json-out FILE]
"""

import argparse
import json
import statistics
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from machine import cpu_model, loadavg  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "src/musilingo/assets/example.ogg"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--group", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/musilingo-probe-facts")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from musilingo.audio import load_audio, split_windows
    from musilingo.model import MusiLingo
    from musilingo.prompts import CAPTION_INSTRUCTION

    m = MusiLingo.from_pretrained(args.model)
    if not m.config.facts:
        raise SystemExit(f"{args.model}: reads no facts; nothing to overlap")
    x, sr = load_audio(EXAMPLE, m.encoder.sample_rate)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(8):  # 8 different 10 s clips cut from the example (shifted, at other gains)
        p = work / f"clip{i}.wav"
        sf.write(p, np.roll(x, i * sr)[: 10 * sr] * (0.5 + 0.05 * i), sr)
        clips.append(str(p))
    shipped_encode = m._encode_decoded

    def measure(decoded):
        """Each decoded clip's facts per window, as the shipped _encode_decoded measures them."""
        return [None if not isinstance(d, tuple) else m.feature_spec.measure(
            [w.samples for w in split_windows(d[1], m.encoder.sample_rate, m.config.window_s)])
            for d in decoded]

    def beside_encoder(decoded, batch_size):
        # the encoder runs with facts switched off; the facts are measured on a second thread
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(measure, decoded)
            m.config.facts = False
            try:
                out = shipped_encode(decoded, batch_size)
            finally:
                m.config.facts = True
            for p, f in zip(out, pending.result()):
                if f is not None:
                    p.facts = f
        return out

    def caption_single(variant):
        m._encode_decoded = beside_encoder if variant == "beside-encoder" else shipped_encode
        return m.caption(clips[0]).text

    def caption_groups(variant):
        m._encode_decoded = shipped_encode
        if variant == "sequential":
            return [a.text for a in m.caption(clips, batch_size=args.group)]
        # pipelined: group n+1 decoded and measured on a background thread during group n
        groups = [clips[i: i + args.group] for i in range(0, len(clips), args.group)]
        texts = []
        with ThreadPoolExecutor(1) as pool:
            def job(g):
                decoded = m._decode_all(g, None)
                return decoded, measure(decoded)
            pending = pool.submit(job, groups[0])
            for n in range(len(groups)):
                decoded, facts = pending.result()
                if n + 1 < len(groups):
                    pending = pool.submit(job, groups[n + 1])
                m.config.facts = False
                try:
                    prepared = shipped_encode(decoded, args.group)
                finally:
                    m.config.facts = True
                for p, f in zip(prepared, facts):
                    p.facts = f
                index = list(range(len(groups[n])))
                texts += [a.text for _, a in m._answer_group(index, prepared, [CAPTION_INSTRUCTION] * len(index),
                                                             None, args.group, True)]
        return texts

    out = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": args.model, "args": vars(args),
           "machine": {"cpu_model": cpu_model(), "threads": args.threads, "loadavg_before": loadavg()},
           "runtime": m.runtime, "experiments": {}}
    for name, fn, variants in (("single", caption_single, ("sequential", "beside-encoder")),
                               ("groups", caption_groups, ("sequential", "pipelined"))):
        for v in variants:
            fn(v)  # warm
        times = {v: [] for v in variants}
        texts = {}
        for _ in range(args.repeats):
            for v in variants:
                t0 = time.perf_counter()
                texts[v] = fn(v)
                times[v].append(time.perf_counter() - t0)
        base = statistics.median(times[variants[0]])
        out["experiments"][name] = {
            v: {"median_s": statistics.median(ts), "times_s": [round(t, 3) for t in ts],
                "x_sequential": base / statistics.median(ts), "same_texts": texts[v] == texts[variants[0]]}
            for v, ts in times.items()}
        print(name, {v: (round(r["median_s"], 3), round(r["x_sequential"], 3), r["same_texts"])
                     for v, r in out["experiments"][name].items()}, flush=True)
    out["machine"]["loadavg_after"] = loadavg()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
