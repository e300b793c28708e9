"""Training: checkpoint contents, loss decreases, exact resume, two processes, recipe validation."""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
import yaml
from safetensors.torch import load_file

from musilingo.data.manifest import QA, Record, write_manifest
from musilingo.errors import ConfigError
from musilingo.prompts import Turn
from musilingo.train import TrainConfig, train
from musilingo.train.samples import build_samples
from musilingo.train.schedule import lr_at

from conftest import SR, tone

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def manifest(tmp_path):
    recs = []
    for i, (freq, cap) in enumerate([(220, "a slow low drone."), (880, "a fast high tone."),
                                     (440, "a calm middle tone."), (330, "a short hum.")]):
        p = tmp_path / f"c{i}.wav"
        sf.write(str(p), tone(1.5, SR, freq, seed=i), SR)
        recs.append(Record(id=f"c{i}", audio=str(p), split="valid" if i == 3 else "train", caption=cap,
                           qa=[QA("Is it high or low?", "It is high." if freq > 400 else "It is low.", "pitch")]))
    path = tmp_path / "m.jsonl"
    write_manifest(path, recs)
    return path


def _cfg(tmp_path, manifest, **kw):
    base = dict(train=str(manifest), out=str(tmp_path / "run"), init="tiny", lr=1e-2, min_lr=1e-3,
                warmup_steps=2, max_steps=6, batch_size=2, save_every=3, val_every=3, log_every=1,
                feature_cache=str(tmp_path / "cache"), seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_few_steps_write_every_file(tmp_path, manifest):
    folder = train(_cfg(tmp_path, manifest))
    run = tmp_path / "run"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "projector.safetensors", "recipe.yaml"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["trained"] is True and "m.jsonl" in cfg["trained_on"]
    assert set(load_file(str(folder / "projector.safetensors"))) == {"net.0.weight", "net.0.bias"}
    ck = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in ck] == ["step-0000003", "step-0000006"]
    assert sorted(p.name for p in ck[-1].iterdir()) == ["config.json", "projector.safetensors", "recipe.yaml",
                                                         "trainer_state.pt"]
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and "val_loss" in rows[2]
    assert (run / "loss.png").stat().st_size > 1000 and (run / "recipe.yaml").is_file()
    # only trainable weights: no LLM or encoder tensors in the checkpoint
    state = torch.load(ck[-1] / "trainer_state.pt", weights_only=True)
    assert set(state) == {"optimizer", "step", "epoch", "pos", "rng"}


def test_lora_checkpoint_holds_adapter(tmp_path, manifest):
    folder = train(_cfg(tmp_path, manifest, lora_r=2, max_steps=2, save_every=2, summary_token=True))
    assert sorted(p.name for p in (folder / "adapter").iterdir()) == ["adapter_config.json",
                                                                      "adapter_model.safetensors"]
    assert set(load_file(str(folder / "projector.safetensors"))) == {
        "net.0.weight", "net.0.bias", "summary.weight", "summary.bias"}
    from musilingo.model import MusiLingo

    m = MusiLingo.from_pretrained(str(folder))
    assert m.has_lora and m.config.projector.summary_token


def test_continuing_with_more_lora_targets_extends_the_adapter_from_its_exact_answers(tmp_path, manifest):
    from musilingo.model import MusiLingo

    first = train(_cfg(tmp_path / "a", manifest, lora_r=2, max_steps=3, save_every=3))
    attn = ["q_proj", "k_proj", "v_proj", "o_proj"]
    both = attn + ["gate_proj", "up_proj", "down_proj"]
    loaded = MusiLingo.from_pretrained(str(first), trainable=True).eval()
    extended = MusiLingo.from_pretrained(str(first), trainable=True,
                                         overrides={"llm": {"lora": {"target_modules": both}}}).eval()
    assert extended.config.llm.lora.r == 2 and extended.config.llm.name_or_path == "tiny"
    saved = load_file(str(first / "adapter" / "adapter_model.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k)  # the adapter is not a no-op
    state = extended.llm.state_dict()
    for k, v in saved.items():  # every saved tensor is in the extended model, unchanged
        match = [n for n in state if n.replace(".default", "") == k]
        assert len(match) == 1, k
        torch.testing.assert_close(state[match[0]], v)
    ids = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        torch.testing.assert_close(extended.llm(input_ids=ids).logits, loaded.llm(input_ids=ids).logits)

    second = train(_cfg(tmp_path / "b", manifest, init=str(first), lora_targets=both, max_steps=3, save_every=3))
    cfg = json.loads((second / "adapter" / "adapter_config.json").read_text())
    assert sorted(cfg["target_modules"]) == sorted(both)
    assert json.loads((second / "config.json").read_text())["llm"]["lora"]["target_modules"] == both
    mlp = {k: v for k, v in load_file(str(second / "adapter" / "adapter_model.safetensors")).items()
           if "mlp" in k and "lora_B" in k}
    assert mlp and all(v.abs().sum() > 0 for v in mlp.values())  # the new adapters were trained
    assert MusiLingo.from_pretrained(str(second)).has_lora

    with pytest.raises(ConfigError, match="lora_targets needs LoRA"):
        train(_cfg(tmp_path / "c", manifest, lora_r=0, lora_targets=both))
    from musilingo.errors import CheckpointError

    with pytest.raises(CheckpointError, match="can only be extended"):
        train(_cfg(tmp_path / "d", manifest, init=str(second), lora_targets=attn))


def test_loss_goes_down_on_tiny_overfit_set(tmp_path, manifest):
    train(_cfg(tmp_path, manifest, max_steps=40, lora_r=8, lr=1e-2, min_lr=1e-2, log_every=5,
               save_every=100, val_every=1000, tasks=["caption"]))
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < 0.6 * losses[0], losses


def test_resume_reproduces_uninterrupted_run(tmp_path, manifest):
    full = train(_cfg(tmp_path / "a", manifest, lora_r=2))
    cfg = _cfg(tmp_path / "b", manifest, lora_r=2, stop_after_steps=3)
    stopped = train(cfg)
    assert stopped.name == "step-0000003" and not (tmp_path / "b" / "run" / "model").exists()
    cfg.stop_after_steps = None
    resumed = train(cfg)
    for name in ("projector.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(full / name)), load_file(str(resumed / name))
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_run_learns_keeps_fp32_weights_and_resumes(tmp_path, manifest):
    # The GPU path: accelerate's bf16 autocast around the forward pass, fp32 trainable weights.
    train(_cfg(tmp_path / "o", manifest, device="cuda", max_steps=40, lora_r=8, lr=1e-2, min_lr=1e-2,
               log_every=5, save_every=100, val_every=1000, tasks=["caption"]))
    rows = [json.loads(line) for line in (tmp_path / "o" / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < 0.6 * losses[0], losses
    full = train(_cfg(tmp_path / "a", manifest, device="cuda", lora_r=2))
    cfg = _cfg(tmp_path / "b", manifest, device="cuda", lora_r=2, stop_after_steps=3)
    train(cfg)
    cfg.stop_after_steps = None
    resumed = train(cfg)
    for name in ("projector.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(full / name)), load_file(str(resumed / name))
        for k in a:
            assert a[k].dtype == torch.float32, (name, k, a[k].dtype)
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5)


def test_end_at_step_gives_that_checkpoint_of_the_longer_schedule(tmp_path, manifest):
    full = train(_cfg(tmp_path / "a", manifest, save_every=2))  # 6 steps, checkpoints at 4 and 6 kept
    short = train(_cfg(tmp_path / "b", manifest, end_at_step=4))
    assert short == tmp_path / "b" / "run" / "model"
    a = load_file(str(full.parent / "checkpoints" / "step-0000004" / "projector.safetensors"))
    b = load_file(str(short / "projector.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    rows = [json.loads(line) for line in (tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 4 and "val_loss" in rows[-1]
    assert rows[-1]["lr"] == pytest.approx(lr_at(3, _cfg(tmp_path, manifest)))  # the 6-step schedule's
    with pytest.raises(ConfigError, match="end_at_step"):
        _cfg(tmp_path, manifest, end_at_step=7)


def test_on_the_fly_encoding_matches_cache(tmp_path, manifest):
    a = train(_cfg(tmp_path / "a", manifest, max_steps=2))
    b = train(_cfg(tmp_path / "b", manifest, max_steps=2, feature_cache=None))
    wa, wb = load_file(str(a / "projector.safetensors")), load_file(str(b / "projector.safetensors"))
    torch.testing.assert_close(wa["net.0.weight"], wb["net.0.weight"], atol=1e-5, rtol=1e-4)


def test_two_process_distributed_run(tmp_path, manifest):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(_cfg(tmp_path, manifest, max_steps=2, save_every=2, val_every=2).to_yaml())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # accelerate's Accelerator picks up the torch.distributed environment (gloo on CPU); on GPUs
    # users run `accelerate launch --multi_gpu ...`, which starts the same launcher.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "musilingo.cli", "train", "--recipe", str(recipe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stderr
    assert (tmp_path / "run" / "model" / "projector.safetensors").is_file()


def test_schedule():
    cfg = TrainConfig(train="x", lr=1e-4, min_lr=8e-5, warmup_start_lr=1e-6, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1e-6)
    assert lr_at(10, cfg) == pytest.approx(1e-4)
    assert lr_at(60, cfg) == pytest.approx(9e-5)
    assert lr_at(110, cfg) == pytest.approx(8e-5)


def test_ship_a_continued_run_with_its_earlier_phases(tmp_path, manifest):
    """scripts/ship_default.py on a three-phase run (the default's stage2 + anneal + key shape): the
    last phase's model and recipe, plus each earlier phase's recipe, log and loss curve as phaseN-*."""
    first = train(_cfg(tmp_path, manifest, out=str(tmp_path / "p1"), end_at_step=4))
    second = train(_cfg(tmp_path, manifest, out=str(tmp_path / "p2"), init=str(first), max_steps=3, seed=1))
    train(_cfg(tmp_path, manifest, out=str(tmp_path / "p3"), init=str(second), max_steps=2, seed=2))
    dest = tmp_path / "shipped"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_default.py"), str(tmp_path / "p3"),
                    str(manifest)], check=True, env={**os.environ, "MUSILINGO_SHIP_DEST": str(dest)})
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["config.json", "data_summary.json", "log.jsonl", "loss.png",
                     "phase1-log.jsonl", "phase1-loss.png", "phase1-recipe.yaml",
                     "phase2-log.jsonl", "phase2-loss.png", "phase2-recipe.yaml",
                     "projector.safetensors", "recipe.yaml"]
    training = json.loads((dest / "data_summary.json").read_text())["training"]
    assert training["steps"] == 2
    # the shipped default decodes with llama.cpp where it can run
    assert json.loads((dest / "config.json").read_text())["inference"]["runtime"] == "auto"
    assert [(c["steps"], c["schedule_steps"]) for c in training["continues"]] == [(4, 6), (3, 3)]
    assert [c["model"] for c in training["continues"]] == [str(first), str(second)]
    assert "init: " + str(second) in (dest / "recipe.yaml").read_text()
    assert "init: " + str(first) in (dest / "phase2-recipe.yaml").read_text()
    # a fourth phase that continues the shipped default itself: the old default's phases stay,
    # and the old default becomes phase 3; the evaluations of every earlier phase stay as well
    for ev in ("eval-attributes", "phase1-eval-attributes"):
        (dest / ev).mkdir()
        (dest / ev / "results.json").write_text(json.dumps({"from": ev}))
    train(_cfg(tmp_path, manifest, out=str(tmp_path / "p4"), init=str(dest), max_steps=2, seed=3))
    subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_default.py"), str(tmp_path / "p4"),
                    str(manifest)], check=True, env={**os.environ, "MUSILINGO_SHIP_DEST": str(dest)})
    assert {f"phase{i}-{n}" for i in (1, 2, 3) for n in ("log.jsonl", "loss.png", "recipe.yaml")} <= {
        p.name for p in dest.iterdir()}
    training = json.loads((dest / "data_summary.json").read_text())["training"]
    assert [(c["recipe"], c["steps"]) for c in training["continues"]] == [
        ("phase1-recipe.yaml", 4), ("phase2-recipe.yaml", 3), ("phase3-recipe.yaml", 2)]
    assert "init: " + str(second) in (dest / "phase3-recipe.yaml").read_text()
    assert "init: " + str(dest) in (dest / "recipe.yaml").read_text()
    for ev, was in (("phase3-eval-attributes", "eval-attributes"),
                    ("phase1-eval-attributes", "phase1-eval-attributes")):
        assert json.loads((dest / ev / "results.json").read_text()) == {"from": was}
    # a rebuild from a shipped default kept elsewhere (as the grounded phases from the phase-3
    # weights): the walk stops there and takes its phases, then each run of the chain with its
    # evaluations, numbered after them
    kept = tmp_path / "kept"
    shutil.copytree(dest, kept)
    fifth = train(_cfg(tmp_path, manifest, out=str(tmp_path / "p5"), init=str(kept), max_steps=2, seed=4))
    (tmp_path / "p5" / "eval-dev").mkdir()
    (tmp_path / "p5" / "eval-dev" / "results.json").write_text(json.dumps({"from": "p5"}))
    train(_cfg(tmp_path, manifest, out=str(tmp_path / "p6"), init=str(fifth), max_steps=2, seed=5))
    rebuilt = tmp_path / "rebuilt"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_default.py"), str(tmp_path / "p6"),
                    str(manifest)], check=True, env={**os.environ, "MUSILINGO_SHIP_DEST": str(rebuilt)})
    training = json.loads((rebuilt / "data_summary.json").read_text())["training"]
    assert [c["recipe"] for c in training["continues"]] == [f"phase{i}-recipe.yaml" for i in range(1, 6)]
    assert training["continues"][3]["model"].startswith(str(kept))
    # the kept default's weights are named by hash (its path is often a temporary unpack)
    assert training["continues"][3]["weights_sha256"] == {
        "projector.safetensors": hashlib.sha256((kept / "projector.safetensors").read_bytes()).hexdigest()}
    assert training["continues"][4]["model"] == str(fifth)
    assert "init: " + str(kept) in (rebuilt / "phase5-recipe.yaml").read_text()
    assert "init: " + str(dest) in (rebuilt / "phase4-recipe.yaml").read_text()
    assert json.loads((rebuilt / "phase5-eval-dev" / "results.json").read_text()) == {"from": "p5"}
    assert json.loads((rebuilt / "phase3-eval-attributes" / "results.json").read_text()) == {"from": "eval-attributes"}


def test_recipes_validate_against_the_options():
    recipes = sorted((ROOT / "configs").rglob("*.yaml"))
    assert recipes, "no recipes under configs/"
    for r in recipes:
        TrainConfig.from_yaml(r)


def test_bad_recipe(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("lr: 0.1\nlearning_rate: 3\n")
    with pytest.raises(ConfigError, match="unknown recipe keys \\['learning_rate'\\]"):
        TrainConfig.from_yaml(p)


def test_qa_packing_builds_multi_turn_samples():
    qa = [QA(f"q{i}?", f"a{i}.", "x") for i in range(5)]
    recs = [Record(id="r", audio="r.wav", caption="cap.", qa=qa)]
    one = build_samples(recs, TrainConfig(train="x"))
    assert [len(s.turns) for s in one] == [1] * 6 and one[0].turns[0].answer == "cap."
    packed = build_samples(recs, TrainConfig(train="x", qa_per_sample=3))
    assert [len(s.turns) for s in packed] == [1, 3, 2]
    assert packed[0].turns[0].answer == "cap."  # the caption is never packed with answers
    assert sorted(t.question for s in packed[1:] for t in s.turns) == [q.question for q in qa]
    again = build_samples(recs, TrainConfig(train="x", qa_per_sample=3))
    assert [t.question for t in again[1].turns] == [t.question for t in packed[1].turns]  # seeded
    with pytest.raises(ConfigError, match="qa_per_sample"):
        TrainConfig(train="x", qa_per_sample=0)


def test_qa_oversample_repeats_the_named_kinds_in_training_only():
    qa = [QA("key?", "G major.", "key"), QA("tempo?", "fast.", "tempo"), QA("meter?", "3/4.", "meter")]
    recs = [Record(id="r", audio="r.wav", caption="cap.", qa=qa)]
    cfg = TrainConfig(train="x", qa_per_sample=3, qa_oversample={"key": 2, "tempo": 0})
    samples = build_samples(recs, cfg)
    assert [len(s.turns) for s in samples] == [1, 3, 1, 1]
    assert [s.turns[0].question for s in samples[2:]] == ["key?", "key?"]
    assert all(s.turns[0].answer == "G major." for s in samples[2:])
    assert len(build_samples(recs, cfg, oversample=False)) == 2  # what validation uses
    for bad in ({"key": -1}, {"key": 1.5}, ["key"]):
        with pytest.raises(ConfigError, match="qa_oversample"):
            TrainConfig(train="x", qa_oversample=bad)


def test_transposed_key_answer_renames_the_tonic_once():
    from musilingo.train.samples import transposed_key_answer as t

    assert t("B major.", "B", "major", 1) == "C major."
    assert t("It is in the key of F# minor.", "F#", "minor", 3) == "It is in the key of A minor."
    assert t("E minor.", "E", "minor", 4) == "G# minor." and t("E major.", "E", "major", 4) == "Ab major."
    assert t("Eb major, a bright key.", "Eb", "major", -1) == "D major, a bright key."
    assert t("D mixolydian.", "D", "mixolydian", 1) == "Eb mixolydian."
    assert t("It is in a minor key.", "A", "minor", 2) is None  # the article "a" is not the tonic
    assert t("C major, then C major again.", "C", "major", 2) is None
    assert t("It is major.", "G", "major", 2) is None


def test_key_transpose_builds_renamed_single_turn_key_samples():
    from musilingo.music import pitch_class
    from musilingo.train.samples import TRANSPOSE_INTERVALS

    qa = [QA("What key?", "It is in the key of F# minor.", "key"), QA("tempo?", "fast.", "tempo"),
          QA("Major or minor?", "It is in a minor key.", "key")]
    rec = Record(id="r", audio="r.wav", qa=qa, attributes={"key_tonic": "F#", "key_mode": "minor"})
    cfg = TrainConfig(train="x", key_transpose=3, seed=1)
    samples = build_samples([rec], cfg)
    extra = [s for s in samples if s.transpose]
    assert len(samples) == 3 + 3 and len(extra) == 3  # the answer naming no tonic is not used
    for s in extra:
        assert s.transpose in TRANSPOSE_INTERVALS and len(s.turns) == 1
        tonic = s.turns[0].answer.split(" of ")[1].split()[0]
        assert pitch_class(tonic) == (6 + s.transpose) % 12
    assert len({s.transpose for s in extra}) > 1
    assert extra == [s for s in build_samples([rec], cfg) if s.transpose]  # seeded: resume stays exact
    assert not any(s.transpose for s in build_samples([rec], cfg, oversample=False))  # validation
    assert not any(s.transpose for s in build_samples([Record(id="r", audio="r.wav", qa=qa)], cfg))
    with pytest.raises(ConfigError, match="key_transpose"):
        TrainConfig(train="x", key_transpose=-1)


def test_key_transpose_moves_the_pitch_features_of_its_samples(tmp_path):
    pytest.importorskip("onnxruntime")
    from musilingo.encoders.basic_pitch import transpose_features
    from musilingo.train.build import build_model
    from musilingo.train.feature_source import FeatureSource
    from musilingo.train.samples import Sample

    recs = []
    for i, (freq, tonic) in enumerate([(220.0, "A"), (261.63, "C"), (392.0, "G")]):
        p = tmp_path / f"k{i}.wav"
        sf.write(str(p), tone(1.5, SR, freq, seed=i), SR)
        recs.append(Record(id=f"k{i}", audio=str(p), split="valid" if i == 2 else "train", caption="a tone.",
                           qa=[QA("What key is it in?", f"{tonic} major.", "key")],
                           attributes={"key_tonic": tonic, "key_mode": "major"}))
    write_manifest(tmp_path / "k.jsonl", recs)
    cfg = _cfg(tmp_path, tmp_path / "k.jsonl", encoder="basic-pitch", key_transpose=2, max_steps=2,
               save_every=2, val_every=2)
    folder = train(cfg)
    assert (folder / "projector.safetensors").is_file()
    assert yaml.safe_load((folder / "recipe.yaml").read_text())["key_transpose"] == 2
    model, _ = build_model(cfg, "cpu")
    feats = FeatureSource(model, recs, cfg)
    plain = feats.get(["k0"])[0]
    moved, same = feats.batch([Sample("k0", recs[0].audio, [], transpose=-4), Sample("k0", recs[0].audio, [])])
    torch.testing.assert_close(moved, transpose_features(plain, -4))
    assert not torch.equal(moved, plain) and torch.equal(same, plain)

    with pytest.raises(ConfigError, match="needs an encoder with Basic Pitch"):
        train(_cfg(tmp_path / "x", tmp_path / "k.jsonl", key_transpose=1))  # the tiny preset's random MERT


def test_qa_oversample_flag(capsys):
    from musilingo.cli import main

    assert main(["train", "--train", "m.jsonl", "--qa-oversample", "key=2", "tempo=1",
                 "--print-recipe"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["qa_oversample"] == {"key": 2, "tempo": 1}
    with pytest.raises(SystemExit):
        main(["train", "--train", "m.jsonl", "--qa-oversample", "key", "--print-recipe"])


def test_packed_training_runs_and_trains_every_answer(tmp_path, manifest):
    from musilingo.model import MusiLingo

    m = MusiLingo.from_pretrained("tiny", device="cpu")
    turns = [Turn("q1?", "a b."), Turn("q2?", "c d e.")]
    r = m.prompt.render(turns, m.tokenizer, n_audio=1)
    n_labelled = sum(r.loss_mask)
    only_last = m.prompt.render(turns, m.tokenizer, n_audio=1, train_last_only=True)
    assert n_labelled > sum(only_last.loss_mask) > 0
    out = train(_cfg(tmp_path, manifest, qa_per_sample=4, max_steps=2))
    assert (out / "projector.safetensors").is_file()


def test_length_grouped_order_is_a_seeded_permutation_of_similar_length_batches():
    from musilingo.train.samples import epoch_order

    lengths = [(i * 37) % 101 for i in range(250)]
    o = epoch_order(250, 3, 1, lengths, batch=8)
    assert sorted(o) == list(range(250)) and o == epoch_order(250, 3, 1, lengths, batch=8)
    assert o != epoch_order(250, 3, 2, lengths, batch=8)
    spread = [max(lengths[i] for i in o[b:b + 8]) - min(lengths[i] for i in o[b:b + 8])
              for b in range(0, 248, 8)]
    plain = epoch_order(250, 3, 1)
    spread_plain = [max(lengths[i] for i in plain[b:b + 8]) - min(lengths[i] for i in plain[b:b + 8])
                    for b in range(0, 248, 8)]
    assert sum(spread) * 4 < sum(spread_plain)
    # 250 = 31 full batches + 2 left over: the partial batch comes last, so the training loop's
    # aligned slices never straddle it
    assert len(set(o[-2:]) & set(i for b in range(0, 248, 8) for i in o[b:b + 8])) == 0


def test_grouped_packed_run_resumes_exactly(tmp_path, manifest):
    kw = dict(qa_per_sample=2, group_by_length=True, max_steps=4, save_every=2, batch_size=2)
    full = train(_cfg(tmp_path / "a", manifest, **kw))
    train(_cfg(tmp_path / "b", manifest, stop_after_steps=2, **kw))
    resumed = train(_cfg(tmp_path / "b", manifest, **kw))
    a, b = load_file(str(full / "projector.safetensors")), load_file(str(resumed / "projector.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)
