"""Training on several processes (gloo on CPU, as on several nodes): the loss curve of 2 processes
equals 1 process's with the same global batch, and a run resumes on another number of processes
(2 -> 1, 1 -> 2) onto the same curve. Checkpoints come from the main process only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from musilingo.data.manifest import QA, Record, write_manifest
from musilingo.train import TrainConfig, train

from conftest import SR, tone

GLOBAL_BATCH = 4
STEPS = 6
# 2 processes average two half-batch losses; 1 process averages over the batch's tokens. The
# halves' answer lengths differ a little, so losses agree to about 1e-2, not bit for bit.
RTOL = 2e-2


@pytest.fixture
def manifest(tmp_path):
    recs = []
    caps = [
        "a slow low drone.",
        "a fast high tone.",
        "a calm middle tone.",
        "a short hum.",
        "a bright bell.",
        "a dark pad.",
    ]
    for i, cap in enumerate(caps):
        p = tmp_path / f"c{i}.wav"
        sf.write(str(p), tone(1.5, SR, 220.0 + 110 * i, seed=i), SR)
        recs.append(
            Record(
                id=f"c{i}",
                audio=str(p),
                split="train",
                caption=cap,
                qa=[QA("Is it high or low?", "It is high." if i > 2 else "It is low.", "pitch")],
            )
        )
    path = tmp_path / "m.jsonl"
    write_manifest(path, recs)
    return path


def _cfg(out: Path, manifest: Path, processes: int, **kw) -> TrainConfig:
    base = dict(
        train=str(manifest),
        out=str(out),
        init="tiny",
        lr=1e-2,
        min_lr=1e-3,
        warmup_steps=2,
        max_steps=STEPS,
        batch_size=GLOBAL_BATCH // processes,
        save_every=3,
        log_every=1,
        feature_cache=str(out.parent / "cache"),
        seed=0,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def _launch(cfg: TrainConfig, tmp_path: Path, port: int) -> subprocess.CompletedProcess:
    """``musilingo train`` on 2 processes (torchrun, gloo): what ``accelerate launch`` starts."""
    recipe = tmp_path / f"recipe-{port}.yaml"
    recipe.write_text(cfg.to_yaml())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
        "-m",
        "musilingo.cli",
        "train",
        "--recipe",
        str(recipe),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stderr
    return proc


def _losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def _checkpoints(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").iterdir())


@pytest.mark.slow
def test_two_processes_give_the_one_process_loss_curve_and_resume_on_any_count(tmp_path, manifest):
    one = tmp_path / "one"
    train(_cfg(one, manifest, 1))
    reference = _losses(one)
    assert len(reference) == STEPS

    two = tmp_path / "two"
    _launch(_cfg(two, manifest, 2), tmp_path, 29531)
    assert _losses(two) == pytest.approx(reference, rel=RTOL)
    # written once, by the main process: the kept checkpoints and no temp folders left behind
    assert _checkpoints(two) == ["step-0000003", "step-0000006"]

    # 2 -> 1: stop after 3 steps on 2 processes, finish on 1 with the same global batch
    a = tmp_path / "two-then-one"
    _launch(_cfg(a, manifest, 2, stop_after_steps=3), tmp_path, 29532)
    assert _checkpoints(a) == ["step-0000003"]
    train(_cfg(a, manifest, 1))
    assert _losses(a) == pytest.approx(reference, rel=RTOL)

    # 1 -> 2
    b = tmp_path / "one-then-two"
    train(_cfg(b, manifest, 1, stop_after_steps=3))
    proc = _launch(_cfg(b, manifest, 2), tmp_path, 29533)
    assert "resuming from" in proc.stderr and proc.stderr.count("resuming from") == 1
    assert _losses(b) == pytest.approx(reference, rel=RTOL)
    assert (b / "model" / "projector.safetensors").is_file()
