"""Throughput and latency of ``musilingo serve`` under concurrent requests.

Starts the server in a subprocess on a free loopback port (the ``tiny`` random model by default,
``--model`` to change), fires ``--requests`` requests with at most ``--concurrency`` in flight
(httpx async, bounded by ``--max-seconds``), and prints requests/s, p50/p95 latency and how many
model calls served them, once per server mode (``--modes``, each in a fresh server process):

* ``batched``       the server with runtime torch (``--max-batch``, fast decode, feature cache):
                    as shipped before runtime llama.cpp
* ``batched-int8``  the same with ``precision="int8"`` (weight-only int8 LLM copy)
* ``batched-cpp``   the same with ``runtime="llama.cpp"`` (float32 GGUF; needs llama-cpp-python)
* ``batched-cpp-int8``  runtime llama.cpp with Q8_0 weights
* ``batching-off``  the same with max batch 1
* ``before``        the path every release before issue 18 ran: ``generate()`` on the unmerged
                    model (``fast_decode=False``) and no feature cache (every upload decoded and
                    encoded), batched as shipped

Workloads: ``--endpoint caption`` (a different clip per request) or ``ask``; ``--one-clip`` sends
the same upload with every request (a page asking many questions about one file); ``--questions
distinct`` gives every request its own question, ``same`` one question for all. Examples::

    .venv/bin/python benchmarks/bench_serve.py --requests 64 --concurrency 16
    .venv/bin/python benchmarks/bench_serve.py --model default --endpoint ask --one-clip \
        --requests 20 --concurrency 20 --clip-s 10 --modes before,batched --json-out r.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(seconds: float, sr: int = 24000, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (220 + 220 * seed % 5) * t) + 0.01 * rng.standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


QUESTIONS = ["What is the tempo?", "Which instruments can you hear?", "What key is it in?",
             "Is there any percussion?", "What genre is this?", "How many beats are in a bar?",
             "Describe the music.", "What is the mood?", "Is it major or minor?",
             "How fast is it?", "Which instrument plays the melody?", "Is there a bass line?",
             "What style of music is this?", "Is it a dance?", "Is it played live or programmed?",
             "What is the time signature?", "Does the tempo change?", "Is it loud or soft?",
             "Give a short caption.", "What would you call this piece?"]


def start_server(model: str, device: str | None, port: int, max_batch: int, max_wait_ms: int,
                 max_queue: int, fast_decode: bool = True, feature_cache_items: int = 64,
                 threads: int | None = None, precision: str | None = None,
                 runtime: str | None = None) -> subprocess.Popen:
    code = ("import logging, warnings; warnings.simplefilter('ignore'); import torch, uvicorn; "
            + (f"torch.set_num_threads({threads}); " if threads else "")
            + "from musilingo.model import MusiLingo; "
            "from musilingo.serve import ServeSettings, create_app; "
            f"m = MusiLingo.from_pretrained({model!r}, device={device!r}, fast_decode={fast_decode}, "
            f"precision={precision!r}, runtime={runtime!r}); "
            f"s = ServeSettings(model={model!r}, max_batch={max_batch}, max_wait_ms={max_wait_ms}, "
            f"max_queue={max_queue}, feature_cache_items={feature_cache_items}); "
            f"uvicorn.run(create_app(m, s), host='127.0.0.1', port={port}, log_level='warning')")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            return httpx.get(url + "/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the server did not start in time")


async def fire(url: str, clips: list[bytes], n: int, concurrency: int, max_seconds: float,
               endpoint: str = "caption", questions: list[str] | None = None) -> dict:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: dict[int | str, int] = {}
    deadline = time.monotonic() + max_seconds

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with sem:
            if time.monotonic() > deadline:
                errors["skipped (time limit)"] = errors.get("skipped (time limit)", 0) + 1
                return
            t0 = time.perf_counter()
            try:
                r = await client.post(url + f"/v1/{endpoint}",
                                      files={"file": (f"c{i}.wav", clips[i % len(clips)])},
                                      data={"question": questions[i % len(questions)]}
                                      if endpoint == "ask" else None)
                key: int | str = r.status_code
            except httpx.HTTPError as e:
                key = type(e).__name__
            if key == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors[key] = errors.get(key, 0) + 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=max_seconds, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(n)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"ok": len(latencies), "errors": errors, "wall_s": wall,
            "rps": len(latencies) / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95))}


MODES = {  # label -> (max batch (None = --max-batch), fast_decode, feature_cache_items, precision,
    #                   runtime)
    "batched": (None, True, 64, None, "torch"),
    "batched-int8": (None, True, 64, "int8", "torch"),
    "batched-cpp": (None, True, 64, None, "llama.cpp"),
    "batched-cpp-int8": (None, True, 64, "int8", "llama.cpp"),
    "batching-off": (1, True, 64, None, "torch"),
    "before": (None, False, 0, None, "torch"),
}


def run_mode(args: argparse.Namespace, label: str, clips: list[bytes]) -> dict:
    from machine import loadavg

    batch, fast, cache, precision, runtime = MODES[label]
    max_batch = batch or args.max_batch
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args.model, args.device, port, max_batch, args.max_wait_ms,
                        max_queue=max(64, args.concurrency * 2), fast_decode=fast,
                        feature_cache_items=cache, threads=args.threads, precision=precision,
                        runtime=runtime)
    questions = QUESTIONS if args.questions == "distinct" else QUESTIONS[:1]
    try:
        health = wait_ready(url, proc)
        # warm-up on another clip, so the timed requests start with an empty feature cache
        warm = [make_clip(args.clip_s, seed=99)]
        asyncio.run(fire(url, warm, 2, 1, args.max_seconds, args.endpoint, ["Warm up?"]))
        before = httpx.get(url + "/health").json()["batches"]
        load_before = loadavg()
        res = asyncio.run(fire(url, clips, args.requests, args.concurrency, args.max_seconds,
                               args.endpoint, questions))
        res["loadavg_before"], res["loadavg_after"] = load_before, loadavg()
        after = httpx.get(url + "/health").json()["batches"]
    finally:
        proc.terminate()
        proc.wait(30)
    res.update(mode=label, max_batch=max_batch, device=health["device"],
               generate_calls=after["generate"]["calls"] - before["generate"]["calls"],
               encode_calls=after["encode"]["calls"] - before["encode"]["calls"])
    return res


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny", help="model folder or preset (default: tiny)")
    p.add_argument("--device", default=None)
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--clip-s", type=float, default=5.0, help="length of each uploaded clip")
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--max-wait-ms", type=int, default=20)
    p.add_argument("--max-seconds", type=float, default=300, help="stop firing after this long")
    p.add_argument("--endpoint", choices=("caption", "ask"), default="caption")
    p.add_argument("--one-clip", action="store_true", help="every request uploads the same clip")
    p.add_argument("--questions", choices=("distinct", "same"), default="distinct",
                   help="ask: each request its own question (default) or one for all")
    p.add_argument("--modes", default="batched,batching-off",
                   help=f"server modes, comma-separated, each in a fresh server ({', '.join(MODES)})")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the server")
    p.add_argument("--json", action="store_true", help="print the results as JSON too")
    p.add_argument("--json-out", help="write the results (and the arguments) here")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine.py

    clips = [make_clip(args.clip_s, seed=k) for k in range(1 if args.one_clip else 8)]
    results = [run_mode(args, label, clips) for label in args.modes.split(",") if label]
    print(f"\nmodel={args.model} device={results[0]['device']} requests={args.requests} "
          f"concurrency={args.concurrency} clip={args.clip_s:g}s endpoint={args.endpoint} "
          f"one_clip={args.one_clip} questions={args.questions} cpu_count={os.cpu_count()}")
    print(f"{'mode':<14}{'max_batch':>10}{'ok':>6}{'req/s':>9}{'p50 ms':>10}{'p95 ms':>10}"
          f"{'gen calls':>11}{'enc calls':>11}  errors")
    for r in results:
        print(f"{r['mode']:<14}{r['max_batch']:>10}{r['ok']:>6}{r['rps']:>9.2f}{r['p50_ms']:>10.0f}"
              f"{r['p95_ms']:>10.0f}{r['generate_calls']:>11}{r['encode_calls']:>11}  "
              f"{r['errors'] or '-'}")
    for r in results[1:]:  # each mode against the first, in req/s
        key = "x_" + results[0]["mode"]
        r[key] = r["rps"] / max(results[0]["rps"], 1e-9)
        print(f"{r['mode']} vs {results[0]['mode']}: x{r[key]:.2f} req/s")
    if args.json:
        print(json.dumps(results, indent=2))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "results": results},
                                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
