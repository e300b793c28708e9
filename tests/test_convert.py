"""Importing released MusiLingo checkpoints (.pth with weights_only=True, safetensors)."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from musilingo.convert import convert_checkpoint, read_released_projection
from musilingo.errors import CheckpointError


def _released(tmp_path, w_shape=(4096, 1024)):
    w, b = torch.randn(*w_shape), torch.randn(w_shape[0])
    ckpt = {"model": {"llama_proj.weight": w, "llama_proj.bias": b},
            "optimizer": {"state": {}, "param_groups": [{"lr": 3e-5}]},
            "config": {"run": {"lr_sched": "linear_warmup_cosine_lr"}}, "scaler": None, "epoch": 5}
    p = tmp_path / "checkpoint_5.pth"
    torch.save(ckpt, p)
    return p, w, b


def test_pth_round_trip(tmp_path):
    p, w, b = _released(tmp_path)
    folder = convert_checkpoint(str(p), str(tmp_path / "out"), llm="/models/vicuna-7b")
    state = load_file(str(folder / "projector.safetensors"))
    assert torch.equal(state["net.0.weight"], w) and torch.equal(state["net.0.bias"], b)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["trained"] and cfg["llm"]["name_or_path"] == "/models/vicuna-7b"
    assert cfg["encoder"]["name"] == "mert" and cfg["pool_window"] == 325
    assert cfg["prompt_style"] == "musilingo"


def test_safetensors_shards_with_prefix(tmp_path):
    w, b = torch.randn(4096, 1024), torch.randn(4096)
    (tmp_path / "hub").mkdir()
    save_file({"model.llama_proj.weight": w}, str(tmp_path / "hub" / "model-00001-of-00002.safetensors"))
    save_file({"model.llama_proj.bias": b, "x": torch.zeros(1)}, str(tmp_path / "hub" / "model-00002-of-00002.safetensors"))
    t = read_released_projection(tmp_path / "hub")
    assert torch.equal(t["llama_proj.weight"], w) and torch.equal(t["llama_proj.bias"], b)


def test_wrong_shape(tmp_path):
    p, _, _ = _released(tmp_path, (512, 1024))
    with pytest.raises(CheckpointError, match=r"shape \(512, 1024\)"):
        read_released_projection(p)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "junk.pth"
    p.write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.pth"):
        read_released_projection(p)
    torch.save({"model": {"other": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no llama_proj.weight"):
        read_released_projection(tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no such file"):
        read_released_projection(tmp_path / "missing.pth")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.pth"
    torch.save({"model": {"llama_proj.weight": torch.zeros(1)}, "x": Evil()}, p)
    with pytest.raises(CheckpointError, match="weights-only"):
        read_released_projection(p)
