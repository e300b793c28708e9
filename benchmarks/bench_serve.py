"""Throughput and latency of ``musilingo serve`` under concurrent requests, batched vs not.

Starts the server in a subprocess on a free loopback port (the ``tiny`` random model by default,
``--model`` to change), fires ``--requests`` caption requests with at most ``--concurrency`` in
flight (httpx async, bounded by ``--max-seconds``), and prints requests/s, p50/p95 latency and how
many model calls served them, once with batching (``--max-batch``) and once with batching off
(max batch 1). Example::

    .venv/bin/python benchmarks/bench_serve.py --requests 64 --concurrency 16
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


def start_server(model: str, device: str | None, port: int, max_batch: int, max_wait_ms: int,
                 max_queue: int) -> subprocess.Popen:
    code = ("import logging, warnings; warnings.simplefilter('ignore'); "
            "from musilingo.serve import serve_command; "
            f"serve_command(model={model!r}, device={device!r}, port={port}, max_batch={max_batch}, "
            f"max_wait_ms={max_wait_ms}, max_queue={max_queue}, log_level='warning')")
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


async def fire(url: str, clips: list[bytes], n: int, concurrency: int, max_seconds: float) -> dict:
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
                r = await client.post(url + "/v1/caption",
                                      files={"file": (f"c{i}.wav", clips[i % len(clips)])})
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


def run_mode(args: argparse.Namespace, label: str, max_batch: int, clips: list[bytes]) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args.model, args.device, port, max_batch, args.max_wait_ms,
                        max_queue=max(64, args.concurrency * 2))
    try:
        health = wait_ready(url, proc)
        asyncio.run(fire(url, clips, 2, 1, args.max_seconds))  # warm-up
        before = httpx.get(url + "/health").json()["batches"]
        res = asyncio.run(fire(url, clips, args.requests, args.concurrency, args.max_seconds))
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
    p.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = p.parse_args(argv)

    clips = [make_clip(args.clip_s, seed=k) for k in range(8)]
    results = [run_mode(args, "batched", args.max_batch, clips),
               run_mode(args, "batching off", 1, clips)]
    print(f"\nmodel={args.model} device={results[0]['device']} requests={args.requests} "
          f"concurrency={args.concurrency} clip={args.clip_s:g}s cpu_count={os.cpu_count()}")
    print(f"{'mode':<14}{'max_batch':>10}{'ok':>6}{'req/s':>9}{'p50 ms':>10}{'p95 ms':>10}"
          f"{'gen calls':>11}{'enc calls':>11}  errors")
    for r in results:
        print(f"{r['mode']:<14}{r['max_batch']:>10}{r['ok']:>6}{r['rps']:>9.2f}{r['p50_ms']:>10.0f}"
              f"{r['p95_ms']:>10.0f}{r['generate_calls']:>11}{r['encode_calls']:>11}  "
              f"{r['errors'] or '-'}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
