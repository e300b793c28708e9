"""What one evaluation run does: :class:`EvalOptions` (task, split, protocols, batching,
decoding, baselines) with its checks, and the tasks and protocols it accepts. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from musilingo.errors import ConfigError

TASKS = ("caption", "qa", "attributes")
DEFAULT_PROTOCOLS = {"caption": ["lpmc", "coco"], "qa": ["mullama", "lpmc"],
                     "attributes": ["attributes"]}
TEXT_PROTOCOLS = ("lpmc", "mullama", "coco")


@dataclass
class EvalOptions:
    """What one evaluation run does (the arguments of :func:`eval_command` minus paths)."""

    task: str = "caption"
    """caption | qa | attributes"""
    split: str | None = "test"
    """manifest split evaluated; None = every record"""
    protocols: list[str] = field(default_factory=list)
    """scoring protocols; empty = the task's default (:data:`DEFAULT_PROTOCOLS`)"""
    batch_size: int = 8
    """clips encoded / answers generated per model call"""
    limit: int | None = None
    """evaluate only the first N records of the split"""
    decoding: str = "greedy"
    """greedy | paper | beam (:meth:`musilingo.model.GenerationOptions.named`)"""
    max_new_tokens: int | None = None
    """generation length limit; None = the model config's"""
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
