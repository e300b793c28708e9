"""The options of a training run: :class:`TrainConfig`, read from a YAML recipe (unknown keys
are errors) and/or flags, validated in ``__post_init__``, written back as the run's recipe."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from musilingo.errors import ConfigError


@dataclass
class TrainConfig:
    """Options of ``musilingo train``; a YAML recipe holds (a subset of) these keys."""

    train: str = ""
    """training manifest (JSONL); records of split ``train_split`` are used"""
    out: str = "runs/default"
    """output folder: model folder + checkpoints/ + log.jsonl + loss.png"""
    valid: str | None = None
    """validation manifest (default: the training manifest's ``valid`` split)"""
    train_split: str | None = "train"
    valid_split: str | None = "valid"
    init: str = "default"
    """preset name (starts untrained) or a model folder to continue from (e.g. a stage-1 run)"""
    stage: int = 2
    """1 = caption pretraining (plain prompt), 2 = instruction tuning (the model's prompt style)"""
    tasks: list[str] = field(default_factory=lambda: ["caption", "qa"])
    """which samples to build from each record: caption and/or qa"""
    max_answer_tokens: int | None = None
    """cut answers to this many tokens (stage 1: 32, as the paper)"""
    group_by_length: bool = False
    """batches of samples of similar length: less compute spent on padding"""
    qa_per_sample: int = 1
    """Q&A pairs of one clip packed into one multi-turn conversation (order shuffled per clip):
    the audio and prompt overhead are paid once and every answer is trained; 1 = one pair per
    sample (the paper)"""
    qa_oversample: dict[str, int] = field(default_factory=dict)
    """extra single-turn samples per Q&A pair of these kinds (``{key: 2}``: every key question
    is also trained twice on its own), to weight an attribute the model learns slower; training
    samples only, validation keeps the plain mix"""
    key_transpose: int = 0
    """extra single-turn samples per key question, each with the clip's Basic Pitch features moved
    by a random interval (-5..+6 semitones, seeded per clip) and the answer's tonic renamed to
    match: the key then cannot be learnt as a property of the work. Needs an encoder with Basic
    Pitch (other encoders' features are not moved); training samples only"""
    encoder: str | None = None
    """override the encoder: musicnn | basic-pitch | musicnn+basic-pitch | mert:PATH"""
    projector: str | None = None
    """override the projector: linear | mlp2x_gelu"""
    feature_norm: bool | None = None
    """override feature standardisation in the projector"""
    summary_token: bool | None = None
    """override the projector's whole-clip summary token (one extra audio token per clip)"""
    lora_r: int | None = None
    """LoRA rank on the LLM's attention projections; 0 = frozen LLM (the paper)"""
    lora_targets: list[str] | None = None
    """LLM modules that get LoRA adapters (default: q/k/v/o_proj; add gate/up/down_proj for the
    MLP layers too). With a model-folder init this extends its adapter to more modules: the saved
    modules must be among them, and the new adapters start at zero, so training starts from the
    loaded model's exact answers"""
    prompt_style: str | None = None
    """override the prompt style for stage 2: musilingo | chat"""
    llm: str | None = None
    """override the LLM (folder or hub id)"""
    lr: float = 1e-4
    min_lr: float = 8e-5
    warmup_start_lr: float = 1e-6
    warmup_steps: int = 100
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    max_steps: int = 1000
    """optimizer steps in total (the paper: epochs x iters_per_epoch)"""
    batch_size: int = 8
    """samples per process per micro-batch"""
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    seed: int = 42
    feature_cache: str | None = "cache/features"
    """folder of the feature cache; null = encode audio on the fly at every step"""
    val_every: int = 100
    val_samples: int = 256
    save_every: int = 100
    log_every: int = 10
    keep_checkpoints: int = 2
    device: str | None = None
    end_at_step: int | None = None
    """finish the run at this step although the schedule runs to max_steps: the model folder is
    written there (a checkpoint of a longer cosine schedule, learning rate not yet at min_lr)"""
    stop_after_steps: int | None = None
    """stop (after saving a checkpoint) once this many steps ran in this invocation: time-boxed
    runs on shared machines; rerun the same command to continue"""

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise ConfigError("stage must be 1 or 2")
        bad = set(self.tasks) - {"caption", "qa"}
        if bad or not self.tasks:
            raise ConfigError(f"tasks must be a non-empty subset of caption, qa (got {self.tasks})")
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_steps < 1 or self.qa_per_sample < 1:
            raise ConfigError("batch_size, grad_accum, max_steps and qa_per_sample must be >= 1")
        if not isinstance(self.qa_oversample, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
                for k, v in self.qa_oversample.items()):
            raise ConfigError(f"qa_oversample must map Q&A kinds to counts >= 0 (got {self.qa_oversample!r})")
        if self.key_transpose < 0:
            raise ConfigError("key_transpose must be >= 0")
        if self.end_at_step is not None and not 1 <= self.end_at_step <= self.max_steps:
            raise ConfigError(f"end_at_step must be between 1 and max_steps ({self.max_steps})")
        if not (0 < self.lr and 0 <= self.min_lr <= self.lr):
            raise ConfigError("need 0 < lr and 0 <= min_lr <= lr")
        self.betas = tuple(self.betas)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> "TrainConfig":
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read recipe ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a recipe is a mapping of option: value")
        data.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown recipe keys {unknown}; valid keys: {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_yaml(self) -> str:
        import yaml

        d = dataclasses.asdict(self)
        d["betas"] = list(d["betas"])
        return yaml.safe_dump(d, sort_keys=False)
