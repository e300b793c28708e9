"""What a run starts from: the training and validation records, and the model (a preset with the
recipe's overrides, or a trained folder to continue) with its trainable parameters."""

from __future__ import annotations

import torch

from musilingo.data.manifest import Record, read_manifest
from musilingo.errors import ConfigError, ManifestError
from musilingo.train.config import TrainConfig


def read_split(path: str, split: str | None, what: str) -> list[Record]:
    recs = [r for r in read_manifest(path) if split is None or r.split == split]
    if not recs:
        raise ManifestError(f"{path}: no records in split {split!r} for {what}")
    return recs


def describe_data(records: list[Record], cfg: TrainConfig, n_text: int = 0) -> str:
    """What a run trained on, for the model's ``trained_on`` (attribution)."""
    sources: dict[str, int] = {}
    for r in records:
        sources[r.source or "unknown"] = sources.get(r.source or "unknown", 0) + 1
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(sources.items()))
    names = " + ".join([cfg.train, *cfg.extra_train])
    text = (f"; plus {n_text} text-only samples from the MusicCaps captions of {cfg.musiccaps_text} "
            "(non-eval rows; CC-BY-SA 4.0)") if n_text else ""
    return f"{names} ({len(records)} clips; {parts}){text}"


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
        if cfg.facts is not None:
            config.facts = cfg.facts
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
        if cfg.facts is not None:
            overrides["facts"] = cfg.facts
        if cfg.lora_targets:
            overrides["llm"] = {"lora": {"target_modules": list(cfg.lora_targets)}}
        model = MusiLingo.from_pretrained(cfg.init, device=device, llm=cfg.llm, trainable=True,
                                          overrides=overrides or None)
        fresh = False
    model.projector.requires_grad_(True)
    return model, fresh


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
