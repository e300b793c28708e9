"""Training the projection (and optional LoRA adapters): one explicit loop, one file.

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

import dataclasses
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from musilingo.data.manifest import Record, append_jsonl, atomic_write_text, check_audio_exists, read_manifest
from musilingo.errors import ConfigError, ManifestError
from musilingo.prompts import CAPTION_INSTRUCTION, Turn, get_prompt_style

log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------------------------- data
@dataclass
class Sample:
    clip_id: str
    audio: str
    turns: list[Turn]
    transpose: int = 0
    """semitones to move the clip's pitch features by (``key_transpose`` samples)"""


TRANSPOSE_INTERVALS = [k for k in range(-5, 7) if k]
_MODES = r"major|minor|ionian|dorian|phrygian|lydian|mixolydian|aeolian|locrian"


def transposed_key_answer(answer: str, tonic: str, mode: str | None, semitones: int) -> str | None:
    """``answer`` with its tonic (``tonic`` followed by a mode word: "B major") renamed
    ``semitones`` higher, spelt as the corpus spells tonics (``music.transpose_tonic``); None
    unless it names the tonic exactly once (an answer that cannot be renamed safely is not used)."""
    from musilingo.music import transpose_tonic

    pattern = re.compile(rf"(?<![\w#]){re.escape(tonic)}(?=\s+(?:{_MODES})\b)")
    if len(pattern.findall(answer)) != 1:
        return None
    return pattern.sub(transpose_tonic(tonic, (mode or "").lower(), semitones), answer)


def build_samples(records: list[Record], cfg: TrainConfig, oversample: bool = True) -> list[Sample]:
    """One sample per caption, and one per ``cfg.qa_per_sample`` Q&A pairs, of each record (as
    ``cfg.tasks`` says), plus ``cfg.qa_oversample`` single-turn repeats of the Q&A kinds it names
    (unless ``oversample`` is false). The caption stays a conversation of its own: packed after
    Q&A answers it could be copied from them instead of heard."""
    out = []
    k = cfg.qa_per_sample
    for r in records:
        if "caption" in cfg.tasks and r.caption:
            q = "" if cfg.stage == 1 else CAPTION_INSTRUCTION
            out.append(Sample(r.id, r.audio, [Turn(q, r.caption)]))
        if "qa" in cfg.tasks and cfg.stage == 2:
            turns = [Turn(qa.question, qa.answer) for qa in r.qa]
            if k > 1:
                random.Random(f"{cfg.seed}:{r.id}").shuffle(turns)
            out += [Sample(r.id, r.audio, turns[i: i + k]) for i in range(0, len(turns), k)]
            if oversample:
                out += [Sample(r.id, r.audio, [Turn(qa.question, qa.answer)])
                        for qa in r.qa for _ in range(cfg.qa_oversample.get(qa.kind, 0))]
            if oversample and cfg.key_transpose and r.attributes.get("key_tonic"):
                rng = random.Random(f"{cfg.seed}:{r.id}:transpose")
                for qa in r.qa:
                    if qa.kind != "key":
                        continue
                    for _ in range(cfg.key_transpose):
                        k = rng.choice(TRANSPOSE_INTERVALS)
                        answer = transposed_key_answer(qa.answer, str(r.attributes["key_tonic"]),
                                                       r.attributes.get("key_mode"), k)
                        if answer is not None:
                            out.append(Sample(r.id, r.audio, [Turn(qa.question, answer)], transpose=k))
    return out


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup from warmup_start_lr to lr, then cosine to min_lr (step counts from 0)."""
    if step < cfg.warmup_steps:
        return cfg.warmup_start_lr + (cfg.lr - cfg.warmup_start_lr) * step / max(1, cfg.warmup_steps)
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def epoch_order(n: int, seed: int, epoch: int, lengths: list[int] | None = None,
                batch: int = 1) -> list[int]:
    """The sample order of one epoch: a permutation fixed by (seed, epoch).

    With ``lengths`` (``group_by_length``), consecutive runs of ``batch`` samples have similar
    lengths, so right padding wastes little compute: the permutation is cut into chunks of 32
    batches, each chunk sorted by length and cut into batches, and the full batches shuffled
    (the idea of transformers' ``LengthGroupedSampler``, which works on a DataLoader; this loop
    slices one list so that resume stays exact). A partial batch goes last.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    if lengths is None or batch <= 1:
        return perm
    full, rest = [], []
    for c in range(0, n, batch * 32):
        part = sorted(perm[c: c + batch * 32], key=lambda i: -lengths[i])
        for b in range(0, len(part), batch):
            (full if len(part) - b >= batch else rest).append(part[b: b + batch])
    shuffled = [full[j] for j in torch.randperm(len(full), generator=g).tolist()]
    return [i for b in shuffled + rest for i in b]


def sample_length(s: Sample) -> int:
    """A cheap proxy for a sample's token count (characters of its turns) for length grouping."""
    return sum(len(t.question or "") + len(t.answer or "") + 40 for t in s.turns)


def _read_split(path: str, split: str | None, what: str) -> list[Record]:
    recs = [r for r in read_manifest(path) if split is None or r.split == split]
    if not recs:
        raise ManifestError(f"{path}: no records in split {split!r} for {what}")
    return recs


# ---------------------------------------------------------------------------------------- model
def build_model(cfg: TrainConfig, device: str):
    """The model to train: a fresh preset config with overrides, or a folder to continue."""
    from musilingo.config import PRESETS, LoraConfig, default_pool_window, encoder_config_from_spec
    from musilingo.model import MusiLingo

    overrides: dict = {}
    if cfg.init in PRESETS:
        config = PRESETS[cfg.init]()
        if cfg.encoder:
            config.encoder = encoder_config_from_spec(cfg.encoder)
            config.pool_window = default_pool_window(config.encoder)
        if cfg.projector:
            config.projector.kind = cfg.projector
        if cfg.feature_norm is not None:
            config.projector.feature_norm = cfg.feature_norm
        if cfg.summary_token is not None:
            config.projector.summary_token = cfg.summary_token
        if cfg.lora_r is not None:
            config.llm.lora = LoraConfig(r=cfg.lora_r, alpha=2 * cfg.lora_r) if cfg.lora_r > 0 else None
        if cfg.lora_targets:
            if config.llm.lora is None:
                raise ConfigError("lora_targets needs LoRA (lora_r > 0)")
            config.llm.lora.target_modules = list(cfg.lora_targets)
        if cfg.prompt_style:
            config.prompt_style = cfg.prompt_style
        if cfg.llm:
            config.llm.name_or_path = cfg.llm
        config.__post_init__()
        model = MusiLingo(config, device=device)
        fresh = True
    else:
        if any(v is not None for v in (cfg.encoder, cfg.projector, cfg.feature_norm, cfg.summary_token,
                                       cfg.lora_r)):
            raise ConfigError("encoder/projector/feature_norm/summary_token/lora_r overrides apply to a preset init, "
                              "not to a trained model folder")
        if cfg.prompt_style:
            overrides["prompt_style"] = cfg.prompt_style
        if cfg.lora_targets:
            overrides["llm"] = {"lora": {"target_modules": list(cfg.lora_targets)}}
        model = MusiLingo.from_pretrained(cfg.init, device=device, llm=cfg.llm, trainable=True,
                                          overrides=overrides or None)
        fresh = False
    model.projector.requires_grad_(True)
    return model, fresh


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


# ---------------------------------------------------------------------------------------- loop
class FeatureSource:
    """Pooled features per clip: from the cache, or by running the encoder now (on the fly)."""

    def __init__(self, model, records: list[Record], cfg: TrainConfig):
        from musilingo.encoders.basic_pitch import feature_offsets

        self.model = model
        self.audio = {r.id: r.audio for r in records}
        self.pitch_offsets = feature_offsets(model.encoder)  # where Basic Pitch's bins are
        if cfg.key_transpose and not self.pitch_offsets:
            raise ConfigError(f"key_transpose needs an encoder with Basic Pitch features, not "
                              f"{model.config.encoder.name!r}")
        self.cache = None
        if cfg.feature_cache:
            from musilingo.features import FeatureCache

            self.cache = FeatureCache(cfg.feature_cache, model.feature_spec)
            missing = [r.id for r in records if r.id not in self.cache]
            if missing:
                raise ManifestError(f"{len(missing)} clips could not be encoded (see "
                                    f"{self.cache.dir / 'errors.jsonl'}), e.g. {missing[:3]}")

    def batch(self, samples: list[Sample]) -> list[torch.Tensor]:
        """The features of each sample's clip, moved by the sample's ``transpose``."""
        from musilingo.encoders.basic_pitch import transpose_features

        feats = self.get([s.clip_id for s in samples])
        for i, s in enumerate(samples):
            if s.transpose:
                for o in self.pitch_offsets:
                    feats[i] = transpose_features(feats[i], s.transpose, o)
        return feats

    def get(self, ids: list[str]) -> list[torch.Tensor]:
        if self.cache is not None:
            return [self.cache[i] for i in ids]
        # the same windows as the cache: each window encoded and pooled, windows concatenated;
        # at most 16 windows per encoder call, whatever the number of ids
        prepared = self.model.prepare([self.audio[i] for i in ids], batch_size=min(16, len(ids)))
        for p in prepared:
            if isinstance(p, Exception):
                raise p
        return [torch.cat(p.features, dim=0) for p in prepared]


def _save_checkpoint(model, optimizer, state: dict, ckpt_dir: Path, keep: int, cfg: TrainConfig) -> None:
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


def _latest_checkpoint(ckpt_dir: Path) -> Path | None:
    done = sorted(p for p in ckpt_dir.glob("step-*") if (p / "trainer_state.pt").is_file())
    return done[-1] if done else None


def _rng_state() -> dict:
    s = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        s["cuda"] = torch.cuda.get_rng_state()  # LoRA dropout on the GPU draws from this generator
    return s


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state(s["cuda"])
    random.setstate(s["python"])


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) a training run; returns the output model folder."""
    from accelerate import Accelerator

    from musilingo.model import resolve_device

    use_cuda = resolve_device(cfg.device).startswith("cuda")
    acc = Accelerator(cpu=not use_cuda, mixed_precision="bf16" if use_cuda else "no",
                      gradient_accumulation_steps=cfg.grad_accum)
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    if acc.is_main_process:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "recipe.yaml", cfg.to_yaml())
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)

    train_recs = _read_split(cfg.train, cfg.train_split, "training")
    train_recs, _ = check_audio_exists(train_recs, where=cfg.train)
    valid_recs: list[Record] = []
    try:
        valid_recs = _read_split(cfg.valid or cfg.train, cfg.valid_split, "validation")
        valid_recs, _ = check_audio_exists(valid_recs, where=cfg.valid or cfg.train)
    except ManifestError:
        if cfg.valid:
            raise
        log.warning("no validation split: validation loss is not tracked")
    samples = build_samples(train_recs, cfg)
    if not samples:
        raise ManifestError(f"{cfg.train}: no {'/'.join(cfg.tasks)} samples in the training records")
    vsamples = build_samples(valid_recs, cfg, oversample=False)
    rng = random.Random(cfg.seed)
    rng.shuffle(vsamples)
    vsamples = vsamples[: cfg.val_samples]

    model, fresh = build_model(cfg, str(acc.device))
    style = get_prompt_style("plain", model.tokenizer) if cfg.stage == 1 else model.prompt
    render = dict(max_answer_tokens=cfg.max_answer_tokens or (32 if cfg.stage == 1 else None), style=style)
    if cfg.feature_cache and acc.is_main_process:  # encode what the cache lacks, once
        from musilingo.features import build_feature_cache

        build_feature_cache(model.feature_spec, train_recs + valid_recs, cfg.feature_cache,
                            batch_size=8, device=str(model.device), progress=True)
    acc.wait_for_everyone()
    feats = FeatureSource(model, train_recs + valid_recs, cfg)
    if fresh and model.projector.feature_norm:
        # standardisation statistics: 2000 clips from the cache, 256 when every clip must be
        # encoded now (on the fly), a random subset fixed by the seed either way
        pool = sorted({s.clip_id for s in samples})
        n_stats = min(len(pool), 2000 if cfg.feature_cache else 256)
        stats_ids = sorted(random.Random(cfg.seed).sample(pool, n_stats))
        model.projector.set_feature_stats(torch.cat(feats.get(stats_ids), dim=0).to(model.device))

    params = trainable_parameters(model)
    n_train = sum(p.numel() for p in params)
    end = cfg.end_at_step or cfg.max_steps  # the schedule (lr_at) still runs to max_steps
    optimizer = torch.optim.AdamW(params, lr=cfg.warmup_start_lr, betas=cfg.betas,
                                  weight_decay=cfg.weight_decay)
    state = {"step": 0, "epoch": 0, "pos": 0, "rng": _rng_state()}
    resume = _latest_checkpoint(ckpt_dir)
    if resume is not None:
        saved = torch.load(resume / "trainer_state.pt", map_location="cpu", weights_only=True)
        model.load_projector(resume / "projector.safetensors")
        if (resume / "adapter").is_dir():
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model.llm, load_file(str(resume / "adapter" / "adapter_model.safetensors")))
        optimizer.load_state_dict(saved["optimizer"])
        state = {k: saved[k] for k in ("step", "epoch", "pos", "rng")}
        _set_rng_state(state["rng"])
        if acc.is_main_process:
            print(f"resuming from {resume} (step {state['step']})", file=sys.stderr)
    ddp_model, optimizer = acc.prepare(model, optimizer)
    world, rank = acc.num_processes, acc.process_index
    global_batch = cfg.batch_size * world
    log_path = out / "log.jsonl"
    if acc.is_main_process and resume is None and log_path.exists():
        log_path.unlink()
    if acc.is_main_process:
        print(f"training {n_train:,} parameters on {len(samples)} samples "
              f"({len(train_recs)} clips), {world} process(es), {end} steps"
              + (f" of a {cfg.max_steps}-step schedule" if end < cfg.max_steps else ""), file=sys.stderr)

    bar = None
    if acc.is_main_process:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=state["step"], unit="step", file=sys.stderr, dynamic_ncols=True)
    lengths = [sample_length(s) for s in samples] if cfg.group_by_length else None
    order = epoch_order(len(samples), cfg.seed, state["epoch"], lengths, global_batch)
    t0, seen, running = time.perf_counter(), 0, []
    start_step = state["step"]
    model.config.trained = True
    model.config.trained_on = _describe_data(train_recs, cfg)
    model.train()
    model.encoder.eval()
    while state["step"] < end:
        for g in optimizer.param_groups:
            g["lr"] = lr_at(state["step"], cfg)
        for _ in range(cfg.grad_accum):
            if state["pos"] + global_batch > len(order):
                state["epoch"] += 1
                state["pos"] = 0
                order = epoch_order(len(samples), cfg.seed, state["epoch"], lengths, global_batch)
            idx = order[state["pos"]: state["pos"] + global_batch][rank::world]
            state["pos"] += global_batch
            batch = [samples[i] for i in idx]
            with acc.accumulate(ddp_model):
                with acc.autocast():
                    loss = ddp_model(feats.batch(batch), [s.turns for s in batch], **render)
                acc.backward(loss)
                if acc.sync_gradients and cfg.max_grad_norm:
                    acc.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            running.append(float(loss.detach()))
            seen += len(batch) * world
        state["step"] += 1
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{running[-1]:.3f}")
        row = None
        if state["step"] % cfg.log_every == 0 or state["step"] == end:
            el = time.perf_counter() - t0
            row = {"step": state["step"], "loss": sum(running) / len(running), "lr": lr_at(state["step"] - 1, cfg),
                   "samples_per_s": seen / el if el > 0 else None, "epoch": state["epoch"]}
            running = []
        if vsamples and (state["step"] % cfg.val_every == 0 or state["step"] == end):
            row = row or {"step": state["step"]}
            row["val_loss"] = validate(model, feats, vsamples, cfg.batch_size, render, acc)
        if row and acc.is_main_process:
            append_jsonl(log_path, row)
        stop = cfg.stop_after_steps is not None and state["step"] - start_step >= cfg.stop_after_steps
        if state["step"] % cfg.save_every == 0 or state["step"] == end or stop:
            state["rng"] = _rng_state()
            if acc.is_main_process:
                _save_checkpoint(acc.unwrap_model(ddp_model), optimizer, dict(state), ckpt_dir,
                                 cfg.keep_checkpoints, cfg)
            acc.wait_for_everyone()
        if stop:
            break
    if bar:
        bar.close()
    if state["step"] < end:
        if acc.is_main_process:
            print(f"stopped at step {state['step']} of {end}; rerun to continue", file=sys.stderr)
        return ckpt_dir / f"step-{state['step']:07d}"
    if acc.is_main_process:
        final = acc.unwrap_model(ddp_model)
        final.save_pretrained(out / "model", extra={"recipe.yaml": cfg.to_yaml()})
        plot_losses(log_path, out / "loss.png")
    acc.wait_for_everyone()
    return out / "model"


@torch.no_grad()
def validate(model, feats: FeatureSource, vsamples: list[Sample], batch_size: int, render: dict, acc) -> float:
    """Mean validation loss (weighted by batch) on this process's share of the validation samples."""
    was = model.training
    model.eval()
    total, n = 0.0, 0
    mine = vsamples[acc.process_index::acc.num_processes]
    for b in range(0, len(mine), batch_size):
        batch = mine[b: b + batch_size]
        with acc.autocast():
            loss = model.loss(feats.batch(batch), [s.turns for s in batch], **render)
        total += float(loss) * len(batch)
        n += len(batch)
    model.train(was)
    model.encoder.eval()
    t = torch.tensor([total, n], dtype=torch.float64, device=acc.device)
    t = acc.reduce(t, reduction="sum") if acc.num_processes > 1 else t
    return float(t[0] / max(1.0, float(t[1])))


def _describe_data(records: list[Record], cfg: TrainConfig) -> str:
    sources: dict[str, int] = {}
    for r in records:
        sources[r.source or "unknown"] = sources.get(r.source or "unknown", 0) + 1
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(sources.items()))
    return f"{cfg.train} ({len(records)} clips; {parts})"


def plot_losses(log_path: Path, png: Path) -> None:
    """Training and validation loss against step (matplotlib, Agg)."""
    if not log_path.is_file():
        return
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    tr = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    va = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    if tr:
        ax.plot(*zip(*tr), label="train loss")
    if va:
        ax.plot(*zip(*va), marker="o", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (answer tokens)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def train_command(recipe: str | None = None, print_recipe: bool = False, **overrides) -> int:
    """``musilingo train``: run a recipe (YAML) with command-line overrides."""
    cfg = TrainConfig.from_yaml(recipe, **overrides) if recipe else TrainConfig(
        **{k: v for k, v in overrides.items() if v is not None})
    if print_recipe:
        print(cfg.to_yaml(), end="")
        return 0
    if not cfg.train:
        raise ConfigError("no training manifest: set `train:` in the recipe or pass --train")
    folder = train(cfg)
    print(f"wrote {folder}")
    return 0
