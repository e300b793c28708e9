"""The training loop: setup, train, validate, save (resumable exactly). The parts it uses live in
the other modules of this package."""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path

import torch

from musilingo.data.manifest import Record, append_jsonl, atomic_write_text, check_audio_exists
from musilingo.errors import ManifestError
from musilingo.prompts import get_prompt_style
from musilingo.train.build import build_model, describe_data, read_split, trainable_parameters
from musilingo.train.checkpoint import latest_checkpoint, rng_state, save_checkpoint, set_rng_state
from musilingo.train.config import TrainConfig
from musilingo.train.feature_source import FeatureSource
from musilingo.train.plots import plot_losses
from musilingo.train.samples import Sample, build_samples, epoch_order, sample_length, text_only_samples
from musilingo.train.schedule import lr_at

log = logging.getLogger(__name__)


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

    train_recs = read_split(cfg.train, cfg.train_split, "training")
    train_recs, _ = check_audio_exists(train_recs, where=cfg.train)
    for extra in cfg.extra_train:
        more, _ = check_audio_exists(read_split(extra, cfg.train_split, "training"), where=extra)
        train_recs += more
    valid_recs: list[Record] = []
    try:
        valid_recs = read_split(cfg.valid or cfg.train, cfg.valid_split, "validation")
        valid_recs, _ = check_audio_exists(valid_recs, where=cfg.valid or cfg.train)
    except ManifestError:
        if cfg.valid:
            raise
        log.warning("no validation split: validation loss is not tracked")
    text_samples = text_only_samples(cfg)
    samples = build_samples(train_recs, cfg) + text_samples
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
        pool = sorted({s.clip_id for s in samples if s.clip_id is not None})
        n_stats = min(len(pool), 2000 if cfg.feature_cache else 256)
        stats_ids = sorted(random.Random(cfg.seed).sample(pool, n_stats))
        model.projector.set_feature_stats(torch.cat(feats.get(stats_ids), dim=0).to(model.device))

    params = trainable_parameters(model)
    n_train = sum(p.numel() for p in params)
    end = cfg.end_at_step or cfg.max_steps  # the schedule (lr_at) still runs to max_steps
    optimizer = torch.optim.AdamW(params, lr=cfg.warmup_start_lr, betas=cfg.betas,
                                  weight_decay=cfg.weight_decay)
    state = {"step": 0, "epoch": 0, "pos": 0, "rng": rng_state()}
    # the main process picks the checkpoint and every process loads that one (out/ is on a file
    # system all nodes share; a node that lists the folder late must not start from scratch)
    resume = latest_checkpoint(ckpt_dir) if acc.is_main_process else None
    if acc.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        resume = broadcast_object_list([resume])[0]
    if resume is not None:
        saved = torch.load(resume / "trainer_state.pt", map_location="cpu", weights_only=True)
        model.load_projector(resume / "projector.safetensors")
        if (resume / "adapter").is_dir():
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model.llm, load_file(str(resume / "adapter" / "adapter_model.safetensors")))
        optimizer.load_state_dict(saved["optimizer"])
        state = {k: saved[k] for k in ("step", "epoch", "pos", "rng")}
        set_rng_state(state["rng"])
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
    model.config.trained_on = describe_data(train_recs, cfg, len(text_samples))
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
                    loss = ddp_model(feats.batch(batch), [s.turns for s in batch],
                                     facts=feats.facts(batch), **render)
                acc.backward(loss)
                if acc.sync_gradients and cfg.max_grad_norm:
                    acc.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            # the logged loss is the mean over all processes' batches (the global batch), so a
            # curve does not depend on how many processes shared the batch
            running.append(float(acc.reduce(loss.detach(), reduction="mean")))
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
            state["rng"] = rng_state()
            if acc.is_main_process:
                save_checkpoint(acc.unwrap_model(ddp_model), optimizer, dict(state), ckpt_dir,
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
            loss = model.loss(feats.batch(batch), [s.turns for s in batch], facts=feats.facts(batch),
                              **render)
        total += float(loss) * len(batch)
        n += len(batch)
    model.train(was)
    model.encoder.eval()
    t = torch.tensor([total, n], dtype=torch.float64, device=acc.device)
    t = acc.reduce(t, reduction="sum") if acc.num_processes > 1 else t
    return float(t[0] / max(1.0, float(t[1])))
