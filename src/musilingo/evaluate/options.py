"""What one evaluation run does: :class:`EvalOptions` (task, split, protocols, batching,
decoding, baselines) with its checks, and the tasks and protocols it accepts. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from musilingo.errors import ConfigError
from musilingo.generation import Decoding, Runtime, Precision
from musilingo.metrics.score import Protocol

Task = Literal["caption", "qa", "attributes"]
TASKS: tuple[str, ...] = Task.__args__
DEFAULT_PROTOCOLS = {"caption": ["lpmc", "coco"], "qa": ["mullama", "lpmc"],
                     "attributes": ["attributes"]}
TEXT_PROTOCOLS = ("lpmc", "mullama", "coco")


@dataclass
class EvalOptions:
    """What one evaluation run does: task, split, scoring, generation and baselines."""

    task: Task = "caption"
    """what is asked: the caption, every Q&A pair, or one question per attribute"""
    split: str | None = "test"
    """manifest split evaluated; "all" (or None) = every record"""
    protocols: list[Protocol] = field(default_factory=list)
    """scoring protocols (caption, qa: lpmc, mullama, coco; attributes: attributes); empty = the
    task's default (caption: lpmc coco, qa: mullama lpmc)"""
    batch_size: int = 8
    """clips encoded / answers generated per model call"""
    limit: int | None = None
    """evaluate only the first N records of the split"""
    decoding: Decoding = "greedy"
    """greedy; paper = sampling T=0.1 top_p=0.5 as published; beam = 4 beams
    (:meth:`musilingo.model.GenerationOptions.named`)"""
    max_new_tokens: int | None = None
    """generation length limit; None = the model config's"""
    precision: Precision | None = None
    """weights greedy answers are decoded with (None = the model config's; int8 is faster on CPU,
    see docs/usage.md for what it costs); recorded in run.json"""
    runtime: Runtime | None = None
    """what decodes greedy answers: torch or llama.cpp (None = the model config's); recorded in
    run.json"""
    bertscore: bool = True
    """compute BERTScore in the text protocols"""
    bertscore_model: str | None = None
    """local BERTScore model folder; None = the shipped MiniLM"""
    baselines: bool = True
    """attributes task: also run the no-audio, majority and linear-probe baselines"""
    train_split: str = "train"
    """split the majority and probe baselines learn from"""
    feature_cache: str | None = None
    """folder of the shared feature cache (``musilingo features``); None = OUT/features"""

    def __post_init__(self):
        if self.split == "all":
            self.split = None
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if not self.protocols:
            self.protocols = list(DEFAULT_PROTOCOLS[self.task])
        allowed = ("attributes",) if self.task == "attributes" else TEXT_PROTOCOLS
        bad = [p for p in self.protocols if p not in allowed]
        if bad:
            raise ConfigError(f"protocol(s) {bad} do not apply to the {self.task} task; "
                              f"choose from {', '.join(allowed)}")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit must be at least 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError("max_new_tokens must be at least 1")
