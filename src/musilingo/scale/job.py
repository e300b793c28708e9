"""What a scaled job computes: :class:`JobSpec`, one value that travels to every worker and whose
:meth:`JobSpec.key` is stored beside the output (``job.json``), so a rerun into the same folder
with other settings is refused instead of mixing answers. Runs nothing."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from musilingo import __version__
from musilingo.errors import ConfigError
from musilingo.generation import DECODINGS


@dataclass(frozen=True)
class JobSpec:
    """One batch job: which task, asked of which model, decoded how."""

    task: str = "caption"
    """caption | ask | features (pooled encoder features per window, no LLM) | analyze (measured
    facts of ``musilingo.analysis``, no model)"""
    question: str | None = None
    """the question of an ``ask`` job (caption jobs use the caption instruction)"""
    model: str = "default"
    """model folder or preset; a local folder is made absolute so remote workers find it"""
    llm: str | None = None
    """replace the model's LLM (a folder or hub id), as ``--llm`` does for the plain CLI"""
    decoding: str = "greedy"
    """greedy | paper | beam (``GenerationOptions.named``)"""
    max_new_tokens: int | None = None
    """longest answer in tokens (default: the model's)"""
    window_s: float | None = None
    """window length in seconds for long files (default: the model's)"""
    whole_track: bool = True
    """long files: also answer about the whole track, not only per window"""
    max_duration_s: float | None = None
    """refuse files longer than this (default: ``audio.MAX_DURATION_S``)"""
    batch_size: int = 8
    """clips per encoder call and answers per generate call (as the plain CLI's --batch-size)"""
    analysis_tags: bool = True
    """analyze: run the musicnn taggers too (``musilingo analyze --no-tags`` turns them off)"""

    def __post_init__(self) -> None:
        from musilingo.scale import TASKS

        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.task == "ask" and not (self.question or "").strip():
            raise ConfigError("an ask job needs a question")
        if self.decoding not in DECODINGS:
            raise ConfigError(f"unknown decoding {self.decoding!r}; choose one of {DECODINGS}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        for name in ("window_s", "max_duration_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {v}")
        if Path(self.model).is_dir():  # frozen: set through object.__setattr__
            object.__setattr__(self, "model", os.path.abspath(self.model))

    @property
    def prompt(self) -> str | None:
        """The question every file is asked (None for ``features``)."""
        from musilingo.prompts import CAPTION_INSTRUCTION

        return {"caption": CAPTION_INSTRUCTION, "ask": self.question}.get(self.task)

    def key(self) -> dict:
        """What decides the output rows (batch size does not): stored as ``job.json``."""
        d = asdict(self)
        d.pop("batch_size")
        d["question"] = self.prompt
        return {"musilingo_version": __version__, **d}
