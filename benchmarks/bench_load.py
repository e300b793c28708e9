"""Start-up cost: a fresh process that loads a model for answering, timed whole from outside.

Each run is a new Python process that imports musilingo and calls
``MusiLingo.from_pretrained(MODEL)`` (what the CLI, the server and ``musilingo eval`` do first), so
imports, weight reads, the decoding copy and the llama.cpp GGUF lookup are all counted. With
``--vs-src OTHER/src`` the same load runs from another checkout's source tree (e.g. a
``git worktree`` of an older commit) in alternating runs, A B A B ..., and the ratio is taken pair
by pair, so a drift of the machine's speed hits both alike. Wall seconds (monotonic clock around
the child), user + system CPU seconds and peak resident memory come from ``os.wait4``.

Usage:
  .venv/bin/python benchmarks/bench_load.py --runs 6 [--vs-src /path/to/old/src] [--json-out FILE]

One warm-up run of each side is not counted (it writes a GGUF copy that is not cached yet).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model, loadavg  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
LOAD = "import sys; from musilingo.model import MusiLingo; MusiLingo.from_pretrained(sys.argv[1])"


def run_once(src: Path, model: str, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(threads))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", LOAD, model], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"load from {src} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_mib": round(usage.ru_maxrss / 1024, 1)}  # ru_maxrss is in KiB on Linux


def summary(runs: list[dict]) -> dict:
    return {k: {"min": min(r[k] for r in runs), "median": statistics.median(r[k] for r in runs),
                "max": max(r[k] for r in runs)} for k in runs[0]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vs-src", help="another checkout's src/ to time against (B)")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    sides = {"A": SRC} | ({"B": Path(args.vs_src).resolve()} if args.vs_src else {})
    before = loadavg()
    for src in sides.values():  # warm-up: fills the GGUF cache and the page cache
        run_once(src, args.model, args.threads)
    runs = {k: [] for k in sides}
    for i in range(args.runs):
        for k, src in sides.items():
            runs[k].append(run_once(src, args.model, args.threads))
        print(f"run {i + 1}: " + "  ".join(f"{k} {runs[k][-1]['wall_s']:.2f} s" for k in sides), flush=True)
    out = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": args.model, "runs": args.runs,
           "machine": {"cpu_model": cpu_model(), "threads": args.threads, "loadavg_before": before,
                       "loadavg_after": loadavg()},
           "sides": {k: {"src": str(src), "runs": runs[k], **summary(runs[k])} for k, src in sides.items()}}
    if "B" in sides:
        out["a_over_b"] = {key: statistics.median(a[key] / b[key] for a, b in zip(runs["A"], runs["B"]))
                           for key in ("wall_s", "cpu_s", "peak_mib")}
    for k in sides:
        s = out["sides"][k]
        print(f"{k} ({sides[k]}): wall median {s['wall_s']['median']:.2f} s, cpu {s['cpu_s']['median']:.2f} s, "
              f"peak {s['peak_mib']['median']:.0f} MiB")
    if "B" in sides:
        r = out["a_over_b"]
        print(f"A/B medians of pair ratios: wall {r['wall_s']:.3f}, cpu {r['cpu_s']:.3f}, peak {r['peak_mib']:.3f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
