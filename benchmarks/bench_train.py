"""Training throughput: samples/s from the feature cache vs encoding the audio at every step.

The published MusiLingo code runs MERT inside every training step; `musilingo train` can read
pooled features from the cache instead (`feature_cache: null` gives the published behaviour).
This script runs the same recipe twice for a few steps on a manifest and prints both figures,
taken from each run's `log.jsonl` (samples per second of wall time over all logged steps, the
first step included). Filling or checking the cache happens before the timed loop; it is part
of `wall_s_incl_setup` only.

    .venv/bin/python benchmarks/bench_train.py --train corpus/manifest.jsonl \
        --recipe configs/default/stage2.yaml --feature-cache cache/features --steps 8
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model, loadavg

from musilingo.train import TrainConfig, train


def run(cfg: TrainConfig) -> dict:
    t = time.perf_counter()
    train(cfg)
    wall = time.perf_counter() - t
    rows = [json.loads(line) for line in (Path(cfg.out) / "log.jsonl").read_text().splitlines()]
    last = [r for r in rows if r.get("samples_per_s")][-1]
    return {"steps": last["step"], "samples_per_s": round(last["samples_per_s"], 3),
            "wall_s_incl_setup": round(wall, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True, help="training manifest (JSONL)")
    ap.add_argument("--recipe", default="configs/default/stage2.yaml")
    ap.add_argument("--feature-cache", default="cache/features")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=None, help="override the recipe's batch_size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-on-the-fly", action="store_true")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict = {"machine": {"cpu": cpu_model(), "threads": args.threads, "loadavg_before": loadavg()},
                 "recipe": args.recipe, "steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(train=args.train, max_steps=args.steps, log_every=1, val_every=10**9, val_samples=0,
                      save_every=10**9, warmup_steps=1, device="cpu")
        if args.batch:
            common["batch_size"] = args.batch
        cfg = TrainConfig.from_yaml(args.recipe, out=f"{tmp}/cached", feature_cache=args.feature_cache,
                                    **common)
        out["cached"] = run(cfg)
        print(json.dumps({"cached": out["cached"]}), flush=True)
        if not args.skip_on_the_fly:
            cfg = TrainConfig.from_yaml(args.recipe, out=f"{tmp}/fly", **common)
            cfg.feature_cache = None
            out["on_the_fly"] = run(cfg)
            print(json.dumps({"on_the_fly": out["on_the_fly"]}), flush=True)
    out["machine"]["loadavg_after"] = loadavg()
    if "on_the_fly" in out:
        out["speedup_cached"] = round(out["cached"]["samples_per_s"] / out["on_the_fly"]["samples_per_s"], 2)
    print(json.dumps(out, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
