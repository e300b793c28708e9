"""Import released MusiLingo weights into a self-describing ``paper`` model folder.

The released ``.pth`` files are dicts ``{model, optimizer, config, scaler, epoch}`` whose ``model``
holds only the trained projection (``llama_proj.weight`` [4096, 1024], ``llama_proj.bias`` [4096]).
They are read with ``torch.load(weights_only=True)``: no pickled code runs. Safetensors files (or a
folder of shards, as in the full hub releases) are searched for the same tensors under any prefix.
The result is ``config.json`` (the ``paper`` preset: MERT-v1-330M, Vicuna-7B, linear 1024->4096,
``musilingo`` prompt) + ``projector.safetensors``. This module does not download anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from musilingo import __version__
from musilingo.config import PRESETS
from musilingo.errors import CheckpointError

PROJ_KEYS = ("llama_proj.weight", "llama_proj.bias")
PAPER_SHAPES = {"llama_proj.weight": (4096, 1024), "llama_proj.bias": (4096,)}


def read_released_projection(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Return ``{"llama_proj.weight", "llama_proj.bias"}`` from a released checkpoint."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    tensors: dict[str, torch.Tensor] = {}
    if path.is_dir() or path.suffix == ".safetensors":
        from safetensors import safe_open

        files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
        if not files:
            raise CheckpointError(f"{path}: no .safetensors files in this folder")
        for f in files:
            try:
                with safe_open(str(f), framework="pt") as st:
                    for k in st.keys():
                        for want in PROJ_KEYS:
                            if k == want or k.endswith("." + want):
                                tensors[want] = st.get_tensor(k)
            except Exception as e:
                raise CheckpointError(f"{f}: not a readable safetensors file ({e})") from None
    else:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError, struct.error, EOFError...: any unreadable file
            raise CheckpointError(f"{path}: cannot read as a weights-only torch checkpoint ({e})") from None
        state = obj.get("model", obj) if isinstance(obj, dict) else None
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: expected a dict with a 'model' state dict")
        for want in PROJ_KEYS:
            for k, v in state.items():
                if k == want or k.endswith("." + want):
                    tensors[want] = v
    missing = [k for k in PROJ_KEYS if k not in tensors]
    if missing:
        raise CheckpointError(f"{path}: no {', '.join(missing)} found (is this a MusiLingo checkpoint?)")
    for k, shape in PAPER_SHAPES.items():
        if tuple(tensors[k].shape) != shape:
            raise CheckpointError(f"{path}: {k} has shape {tuple(tensors[k].shape)}, MusiLingo's "
                                  f"projection is {shape} (MERT-330M 1024 -> Vicuna-7B 4096)")
    return tensors


def convert_checkpoint(checkpoint: str, out: str, llm: str | None = None,
                       encoder_path: str | None = None, load: bool = False) -> Path:
    """Write a ``paper`` model folder holding the released projection; returns the folder."""
    from safetensors.torch import save_file

    from musilingo.data.manifest import atomic_write_text

    tensors = read_released_projection(checkpoint)
    config = PRESETS["paper"]()
    if llm:
        config.llm.name_or_path = llm
    if encoder_path:
        config.encoder.path = encoder_path
    config.trained = True
    config.trained_on = f"released MusiLingo checkpoint {Path(checkpoint).name}"
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    state = {"net.0.weight": tensors["llama_proj.weight"].float().contiguous(),
             "net.0.bias": tensors["llama_proj.bias"].float().contiguous()}
    tmp = folder / ".projector.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt", "source": Path(checkpoint).name})
    os.replace(tmp, folder / "projector.safetensors")
    atomic_write_text(folder / "config.json",
                      json.dumps({"musilingo_version": __version__, **config.to_dict()}, indent=2) + "\n")
    if load:
        from musilingo.model import MusiLingo

        MusiLingo.from_pretrained(str(folder))
    return folder
