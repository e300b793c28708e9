"""The options of a training run: :class:`TrainConfig`, read from a YAML recipe (unknown keys
are errors) and/or flags, validated in ``__post_init__``, written back as the run's recipe."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
    """split of the training manifest trained on"""
    extra_train: list[str] = field(default_factory=list)
    """more training manifests whose ``train_split`` records join the training set (e.g. the
    pseudo-labelled real recordings of ``musilingo data real-music``)"""
    musiccaps_text: str | None = None
    """MusicCaps CSV (``musiccaps-public.csv``) whose non-eval rows become text-only samples: a
    tags line from the row's aspects, then its caption and Q&A, with no audio tokens
    (``musilingo.data.musiccaps_text``); None = none"""
    musiccaps_text_limit: int | None = None
    """use at most this many MusicCaps text samples (a seeded random choice); None = all"""
    musiccaps_text_repeat: int = 1
    """how many times each MusicCaps text sample appears per epoch"""
    valid_split: str | None = "valid"
    """split of the validation manifest (or of the training manifest when ``valid`` is not
    given) whose loss is tracked; a missing split there only turns validation off"""
    init: str = "default"
    """preset name (starts untrained) or a model folder to continue from (e.g. a stage-1 run)"""
    stage: Literal[1, 2] = 2
    """1 = caption pretraining (plain prompt), 2 = instruction tuning (the model's prompt style)"""
    tasks: list[Literal["caption", "qa"]] = field(default_factory=lambda: ["caption", "qa"])
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
    facts: bool | None = None
    """override whether the model reads the measured-facts line (``musilingo.analysis`` run on
    each training window and cached beside its features: never the truth); needs a feature cache"""
    llm: str | None = None
    """override the LLM (folder or hub id)"""
    lr: float = 1e-4
    """peak learning rate (AdamW), reached at the end of the warmup"""
    min_lr: float = 8e-5
    """learning rate at max_steps, the end of the cosine decay"""
    warmup_start_lr: float = 1e-6
    """learning rate at step 0; it rises linearly to lr over warmup_steps"""
    warmup_steps: int = 100
    """optimizer steps of linear warmup before the cosine decay"""
    weight_decay: float = 0.05
    """AdamW weight decay"""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW beta1 and beta2"""
    max_steps: int = 1000
    """optimizer steps in total (the paper: epochs x iters_per_epoch)"""
    batch_size: int = 8
    """samples per process per micro-batch"""
    grad_accum: int = 1
    """micro-batches accumulated per optimizer step (global batch = batch_size x grad_accum x
    processes)"""
    max_grad_norm: float | None = 1.0
    """clip the gradient norm to this before each optimizer step; null or 0 = no clipping"""
    seed: int = 42
    """seed of the weights' initialisation, the sample order, the validation subset, the Q&A
    packing and the key transpositions"""
    feature_cache: str | None = "cache/features"
    """folder of the feature cache; null = encode audio on the fly at every step"""
    val_every: int = 100
    """compute the validation loss every this many steps (and at the last step)"""
    val_samples: int = 256
    """validation samples used (a seeded random subset of the validation split)"""
    save_every: int = 100
    """write a checkpoint every this many steps (and at the last step)"""
    log_every: int = 10
    """append the mean training loss, learning rate and speed to log.jsonl every this many steps"""
    keep_checkpoints: int = 2
    """most recent checkpoints kept under checkpoints/; older ones are deleted"""
    device: str | None = None
    """cpu, cuda or cuda:N (default: cuda when available); several GPUs: ``accelerate launch``"""
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
        at_least_one = {"batch_size": self.batch_size, "grad_accum": self.grad_accum,
                        "max_steps": self.max_steps, "qa_per_sample": self.qa_per_sample,
                        "val_every": self.val_every, "save_every": self.save_every,
                        "log_every": self.log_every, "keep_checkpoints": self.keep_checkpoints}
        for name, value in at_least_one.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1 (got {value})")
        for name, value in (("warmup_steps", self.warmup_steps), ("val_samples", self.val_samples),
                            ("weight_decay", self.weight_decay),
                            ("warmup_start_lr", self.warmup_start_lr)):
            if value < 0:
                raise ConfigError(f"{name} must be >= 0 (got {value})")
        for name, value in (("max_answer_tokens", self.max_answer_tokens),
                            ("stop_after_steps", self.stop_after_steps)):
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 (got {value})")
        if self.lora_r is not None and self.lora_r < 0:
            raise ConfigError(f"lora_r must be >= 0 (got {self.lora_r})")
        if self.max_grad_norm is not None and self.max_grad_norm < 0:
            raise ConfigError(f"max_grad_norm must be >= 0 (got {self.max_grad_norm})")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1) (got {list(self.betas)})")
        if not isinstance(self.qa_oversample, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
                for k, v in self.qa_oversample.items()):
            raise ConfigError(f"qa_oversample must map Q&A kinds to counts >= 0 (got {self.qa_oversample!r})")
        if self.key_transpose < 0:
            raise ConfigError("key_transpose must be >= 0")
        if self.musiccaps_text_limit is not None and self.musiccaps_text_limit < 0:
            raise ConfigError("musiccaps_text_limit must be >= 0")
        if self.musiccaps_text_repeat < 0:
            raise ConfigError("musiccaps_text_repeat must be >= 0")
        if self.facts and not self.feature_cache:
            raise ConfigError("facts are measured once and cached beside the features: set feature_cache")
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
