#!/usr/bin/env python
"""The Ray engine against the plain CLI on this machine, and a scaling curve (prints measured
figures and writes a results JSON; not a test).

Every run is a fresh ``musilingo caption`` process on the same generated clips, timed from start
to exit (imports, model load, Ray start and shutdown included):

* plain   ``musilingo caption DIR --out plain.jsonl``
* ray W   ``musilingo caption DIR --engine ray --workers W --num-cpus NCPU --out ray-W`` for
          each W of ``--workers`` (1, 2, 4): W generation actors and W encoder actors on one
          local Ray. The job's time (without Ray start / shutdown) comes from the run's summary
          line. A second, small run (one batch per actor) gives the rate once the actors are up:
          (files - small files) / (job s - small job s).

Reported: wall seconds and files/s per run, the overhead ratio (ray wall / plain wall at 2
workers), the scaling curve (files/s of the job at 1, 2, 4 workers), whether the Ray rows equal
the plain rows, and the load average before and after each run (the CPU may be shared).

``--project`` adds a projection for a library of 30 s tracks from the GPU results in
``benchmarks/results/*bench_gpu*.json`` (paper-scale shapes on one H200): per-GPU tracks/s and the
nodes a deadline needs, every input named with its file. See docs/scale-out.md.

Usage::

    .venv/bin/python benchmarks/bench_ray.py --model tiny --clips 16 --seconds 10 \\
        --json-out benchmarks/results/DATE-ray-tiny.json --project
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from machine import cpu_model, loadavg  # benchmarks/machine.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MUSILINGO = [sys.executable, "-m", "musilingo.cli"]
SR = 24000


def make_clips(folder: Path, n: int, seconds: float) -> None:
    """``n`` clips of ``seconds``: a few sine partials and noise, a different pitch each."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        f0 = 110.0 * 2 ** (i / 12)
        x = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3))
        x = x + 0.01 * rng.standard_normal(len(t))
        sf.write(str(folder / f"clip{i:03d}.wav"), x.astype(np.float32), SR)


def timed_run(cmd: list[str], env: dict) -> dict:
    before = loadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return {
        "wall_s": wall,
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "stdout": proc.stdout,
    }


def rows_of_plain(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _key(r: dict):
    return r["source"], r["scope"], r["start_s"] or 0.0


# ------------------------------------------------------------------------------------ projection
def project(
    ray_rows: list[dict],
    tracks: int,
    track_s: float,
    deadlines_h: list[float],
    gpus_per_node: list[int],
    clip_s: float,
    model: str,
) -> dict:
    """Nodes needed for ``tracks`` tracks of ``track_s`` seconds, from the GPU results files.

    Per GPU, from each ``pipeline`` row (10 s clips: MERT-330M -> 7B LLaMA shape, 64 new tokens,
    bf16, random weights): time per caption t10 = 1 / captions_per_s, of which the encoder's
    share e. A ``track_s`` track is one window (30 s default), so it is one caption and
    ``track_s / 10`` times the encoder's audio: t = t10 * (1 - e) + t10 * e * track_s / 10.
    The Ray engine's efficiency on this machine (files/s of the 1-worker job once its actors are
    up / plain files/s with the model loaded, at most 1) is applied as a pessimistic factor beside
    the ideal one: on CPU the encoder and generation actors share the same cores.
    """
    files = sorted(RESULTS.glob("*bench_gpu*.json"))
    per_gpu = []
    for f in files:
        d = json.loads(f.read_text())
        gpu = d.get("machine", {}).get("gpu", "?")
        for r in d["rows"]:
            if not r["section"].startswith("pipeline") or "encoder_share" not in r:
                continue
            t10 = 1.0 / r["value"]
            e = r["encoder_share"]
            t = t10 * (1 - e) + t10 * e * track_s / 10.0
            per_gpu.append(
                {
                    "file": f"benchmarks/results/{f.name}",
                    "gpu": gpu,
                    "section": r["section"],
                    "batch": r["batch"],
                    "captions_per_s_10s": round(r["value"], 2),
                    "encoder_share": round(e, 4),
                    "tracks_per_s": round(1.0 / t, 2),
                    "gpu_hours": round(tracks * t / 3600.0, 2),
                }
            )
    eff = None
    one = next((r for r in ray_rows if r["workers"] == 1), None)
    if one and one.get("marginal_files_per_s") and one.get("plain_job_files_per_s"):
        eff = round(min(1.0, one["marginal_files_per_s"] / one["plain_job_files_per_s"]), 3)
    table = []
    for g in per_gpu:
        for d_h in deadlines_h:
            for k in gpus_per_node:
                need = tracks / (g["tracks_per_s"] * d_h * 3600.0 * k)
                row = {
                    "file": g["file"],
                    "section": g["section"],
                    "batch": g["batch"],
                    "deadline_h": d_h,
                    "gpus_per_node": k,
                    "nodes_ideal": math.ceil(need),
                }
                if eff:
                    row["nodes_with_cpu_measured_overhead"] = math.ceil(need / eff)
                table.append(row)
    # CPU-only nodes like this one: the best measured Ray job rate on this machine's clips (shorter
    # than track_s: a lower bound on the nodes)
    # (not for the tiny test model: its rate says nothing about a real library)
    best = (
        max(ray_rows, key=lambda r: r["job_files_per_s"]) if ray_rows and model != "tiny" else None
    )
    cpu_nodes = None
    if best:
        cpu_nodes = {
            "files_per_s_per_node": best["job_files_per_s"],
            "workers": best["workers"],
            "clip_s": clip_s,
            "nodes_at_least": {
                str(d_h): math.ceil(tracks / (best["job_files_per_s"] * d_h * 3600.0))
                for d_h in deadlines_h
            },
        }
    return {
        "tracks": tracks,
        "track_s": track_s,
        "per_gpu": per_gpu,
        "ray_efficiency_cpu": eff,
        "nodes": table,
        "cpu_nodes_like_this_machine": cpu_nodes,
        "assumptions": [
            "one 30 s track = one window = one caption of 64 new tokens",
            "encoder time linear in audio length",
            "GPU rows: paper-scale shapes with random weights on one H200",
            "nodes_ideal: no Ray overhead, no start-up (minutes, once per actor)",
            "decode on the nodes' CPUs keeps up (not measured here)",
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count())
    ap.add_argument(
        "--plain-threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS of the plain runs (default: torch's own choice). Ray gives "
        "each actor its CPU share's threads (1 here), so on a busy machine compare "
        "at 1 as well: oversubscribed threads dominate under load",
    )
    ap.add_argument(
        "--no-marginal",
        action="store_true",
        help="skip the small runs (for a model whose per-file work dwarfs start-up)",
    )
    ap.add_argument("--project", action="store_true", help="add the GPU-based node projection")
    ap.add_argument("--tracks", type=int, default=1_000_000)
    ap.add_argument("--deadlines-h", default="1,2,4,8,24")
    ap.add_argument(
        "--reproject",
        type=Path,
        metavar="RESULTS_JSON",
        help="only recompute the projection of an earlier results file (e.g. after new "
        "GPU results), in place",
    )
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    deadlines = [float(d) for d in args.deadlines_h.split(",")]
    if args.reproject:
        result = json.loads(args.reproject.read_text())
        result["projection"] = project(
            result["ray"],
            args.tracks,
            30.0,
            deadlines,
            [1, 8],
            result["args"]["seconds"],
            result["args"]["model"],
        )
        args.reproject.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["projection"]["per_gpu"], indent=1))
        return 0
    workers = [int(w) for w in args.workers.split(",")]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        tmp = Path(tmp)
        clips = tmp / "clips"
        clips.mkdir()
        make_clips(clips, args.clips, args.seconds)
        common = ["--model", args.model, "--batch-size", str(args.batch_size)]
        print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, load {loadavg()}")

        plain_env = dict(env)
        if args.plain_threads:
            plain_env.update(
                OMP_NUM_THREADS=str(args.plain_threads), MKL_NUM_THREADS=str(args.plain_threads)
            )
        plain = timed_run(
            MUSILINGO + ["caption", str(clips), "--out", str(tmp / "plain.jsonl")] + common,
            plain_env,
        )
        # the plain job without imports / model load: the same model, in one process, timed inside
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                (
                    "import sys, time, warnings; warnings.simplefilter('ignore')\n"
                    "from musilingo.model import load_model\n"
                    "from musilingo.audio import find_audio_files\n"
                    f"m, _ = load_model({args.model!r}, 'cpu')\n"
                    f"files = [str(p) for p in find_audio_files({str(clips)!r})]\n"
                    "t = time.perf_counter()\n"
                    f"m.caption(files, batch_size={args.batch_size})\n"
                    "print(time.perf_counter() - t)"
                ),
            ],
            capture_output=True,
            text=True,
            env=plain_env,
        )
        plain_job_s = float(probe.stdout.strip().splitlines()[-1])
        plain_rows = sorted(rows_of_plain(tmp / "plain.jsonl"), key=_key)
        print(
            f"plain: {plain['wall_s']:.1f} s wall ({args.clips / plain['wall_s']:.2f} files/s), "
            f"captioning alone {plain_job_s:.1f} s ({args.clips / plain_job_s:.2f} files/s)"
        )

        sys.path.insert(0, str(ROOT / "src"))
        from musilingo.scale.sinks import read_rows

        ray_rows = []
        for w in workers:
            # a small run (one batch per actor) and the full run: their difference is the rate
            # once the actors are up, without Ray start, actor start-up and model loads
            small = tmp / f"clips-small-{w}"
            small.mkdir()
            n_small = min(args.clips // 2, args.batch_size * w)
            for p in sorted(clips.iterdir())[:n_small]:
                os.symlink(p, small / p.name)
            runs = {}
            for name, folder in ((("small", small),) if not args.no_marginal else ()) + (
                ("full", clips),
            ):
                out = tmp / f"ray-{w}-{name}"
                r = timed_run(
                    MUSILINGO
                    + [
                        "caption",
                        str(folder),
                        "--engine",
                        "ray",
                        "--workers",
                        str(w),
                        "--num-cpus",
                        str(args.num_cpus),
                        "--out",
                        str(out),
                        "--json",
                    ]
                    + common,
                    env,
                )
                r["summary"] = json.loads(r.pop("stdout").strip().splitlines()[-1])
                r["out"] = out
                runs[name] = r
            r, summary = runs["full"], runs["full"]["summary"]
            job_s = summary["seconds"] - summary["ray_start_s"]
            marginal = small_job_s = None
            if "small" in runs:
                small_job_s = (
                    runs["small"]["summary"]["seconds"] - runs["small"]["summary"]["ray_start_s"]
                )
                if job_s > small_job_s:
                    marginal = (args.clips - n_small) / (job_s - small_job_s)
            same = sorted(read_rows(r["out"]), key=_key) == plain_rows
            row = {
                "workers": w,
                "num_cpus": args.num_cpus,
                "wall_s": round(r["wall_s"], 2),
                "files_per_s": round(args.clips / r["wall_s"], 3),
                "ray_start_s": round(summary["ray_start_s"], 2),
                "job_s": round(job_s, 2),
                "job_files_per_s": round(args.clips / job_s, 3),
                "small_files": None if args.no_marginal else n_small,
                "small_job_s": round(small_job_s, 2) if small_job_s else None,
                "marginal_files_per_s": round(marginal, 3) if marginal else None,
                "plain_job_files_per_s": round(args.clips / plain_job_s, 3),
                "answered": summary["answered"],
                "rows_equal_plain": same,
                "loadavg_before": runs[next(iter(runs))]["loadavg_before"],
                "loadavg_after": r["loadavg_after"],
            }
            ray_rows.append(row)
            print(
                f"ray {w} workers: {row['wall_s']} s wall ({row['files_per_s']} files/s), "
                f"Ray start "
                f"{row['ray_start_s']} s, job {row['job_s']} s ({row['job_files_per_s']} files/s; "
                f"{row['marginal_files_per_s']} once up), rows equal plain: {same}, "
                f"load {row['loadavg_before']} -> {row['loadavg_after']}"
            )
    plain.pop("stdout")
    two = next((r for r in ray_rows if r["workers"] == 2), None)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "plain": {
            "wall_s": round(plain["wall_s"], 2),
            "files_per_s": round(args.clips / plain["wall_s"], 3),
            "job_s": round(plain_job_s, 2),
            "job_files_per_s": round(args.clips / plain_job_s, 3),
            "loadavg_before": plain["loadavg_before"],
            "loadavg_after": plain["loadavg_after"],
        },
        "ray": ray_rows,
        "overhead_ratio_2_workers_wall": round(two["wall_s"] / plain["wall_s"], 3) if two else None,
        "overhead_ratio_2_workers_job": round(two["job_s"] / plain_job_s, 3) if two else None,
        "scaling_job_files_per_s": {str(r["workers"]): r["job_files_per_s"] for r in ray_rows},
        "scaling_marginal_files_per_s": {
            str(r["workers"]): r["marginal_files_per_s"] for r in ray_rows
        },
        "total_s": round(time.perf_counter() - t_all, 1),
    }
    import ray

    result["machine"]["ray"] = ray.__version__
    if args.project:
        result["projection"] = project(
            ray_rows,
            args.tracks,
            30.0,
            [float(d) for d in args.deadlines_h.split(",")],
            [1, 8],
            args.seconds,
            args.model,
        )
    print(json.dumps({k: v for k, v in result.items() if k not in ("ray", "projection")}, indent=1))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
