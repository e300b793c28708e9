"""Training the projection (and optional LoRA adapters): one explicit loop.

Modules: ``config`` (TrainConfig, recipes), ``samples`` (conversations per record, the key
augmentation, epoch order), ``build`` (records and the model to train), ``feature_source``
(batch features), ``schedule`` (learning rate), ``checkpoint`` (atomic save, resume), ``loop``
(the loop itself), ``plots`` (loss.png), ``command`` (``musilingo train``).

setup -> train -> validate -> save, as the paper's two stages:

- stage 1, caption pretraining: ``plain`` prompt (no template), captions cut to 32 tokens;
- stage 2, instruction tuning: the model's prompt style (``musilingo`` or ``chat``) on captions
  and question/answer pairs.

AdamW with linear warmup (from ``warmup_start_lr``) then cosine decay to ``min_lr``, gradient
accumulation, bf16 autocast on GPU, features from the cache (``features.py``; filled on first use)
or encoded on the fly at every step as the published code does. Checkpoints hold only trainable
weights (projector + LoRA adapter) plus the trainer state, are written atomically every
``save_every`` steps, and a rerun of the same command resumes exactly where the last one stopped
(same data order, same RNG state, same weights as an uninterrupted run). Several processes or
nodes: ``accelerate launch -m musilingo.cli train ...`` (DDP through ``accelerate``).

A recipe is a YAML dump of :class:`TrainConfig`; unknown keys are errors.
"""

from __future__ import annotations

__all__ = ["TrainConfig", "train", "train_command"]

_EXPORTS = {"TrainConfig": "config", "train": "loop", "train_command": "command"}


def __getattr__(name: str):
    # imported on first use, so ``import musilingo.train`` loads neither torch nor accelerate
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"musilingo.train.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
