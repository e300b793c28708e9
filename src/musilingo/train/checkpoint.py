"""Checkpoints of a run: ``checkpoints/step-N`` written atomically (trainable weights, recipe,
optimizer and RNG state), the newest one found for resume, old ones pruned."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import torch

from musilingo.train.config import TrainConfig


def save_checkpoint(model, optimizer, state: dict, ckpt_dir: Path, keep: int, cfg: TrainConfig) -> None:
    """Write checkpoints/step-N atomically (temp folder + rename) and prune old ones."""
    tmp = ckpt_dir / f".step-{state['step']:07d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, extra={"recipe.yaml": cfg.to_yaml()})
    torch.save({"optimizer": optimizer.state_dict(), **state}, tmp / "trainer_state.pt")
    final = ckpt_dir / f"step-{state['step']:07d}"
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    done = sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    done = sorted(p for p in ckpt_dir.glob("step-*") if (p / "trainer_state.pt").is_file())
    return done[-1] if done else None


def rng_state() -> dict:
    s = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        s["cuda"] = torch.cuda.get_rng_state()  # LoRA dropout on the GPU draws from this generator
    return s


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state(s["cuda"])
    random.setstate(s["python"])
