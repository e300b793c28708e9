"""MERT through transformers' own ``HubertModel``: no remote code, MusiLingo's layer aggregation.

MERT checkpoints (``m-a-p/MERT-v1-330M`` and friends) are HuBERT encoders published with custom
code. Their parameter names follow HuBERT's, so a ``HubertModel`` configured from MERT's
``config.json`` loads ``pytorch_model.bin`` / ``model.safetensors`` directly. The extra MERT keys
(``attention_relax``, ``feature_extractor_cqt``, ...) have no effect at inference with the
published settings; a checkpoint that needs the CQT branch is refused with a clear error.

Padding-exactness: the first conv layer is followed by GroupNorm over time, so zero-padding a
clip changes its features. We therefore run the conv feature encoder on each distinct clip length
separately (GroupNorm is per sample, so equal-length clips still share one call), then pad the
*frames*, mask attention and zero padded frames before the positional conv. A padded batch then
gives the same frames as each clip alone (tested).

Output frames are the equal-weight mean of the selected hidden states (default: all 25 of MERT-330M,
as MusiLingo does: the input to every transformer layer, then the final LayerNorm output).
This module does not pool over time; see ``encoders.base.pool_frames``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from transformers import HubertConfig, HubertModel

from musilingo.encoders.base import Encoder, EncoderOutput
from musilingo.errors import CheckpointError

# MERT config keys that are not HubertConfig fields and are safe to ignore at inference.
IGNORED_MERT_KEYS = ("model_type", "architectures", "auto_map", "transformers_version")
# Parameters the MERT pretraining heads carry that inference does not use.
UNUSED_PARAM_PREFIXES = ("label_embs_concat", "final_proj", "masked_spec_embed", "quantizer",
                         "project_q", "project_hid")


def hubert_config_from_mert(mert_config: dict) -> HubertConfig:
    """Build a ``HubertConfig`` from a MERT ``config.json`` dict (unknown keys are kept as attrs)."""
    if mert_config.get("feature_extractor_cqt"):
        raise CheckpointError("MERT config has feature_extractor_cqt=true: the CQT branch is not "
                              "supported without remote code")
    kwargs = {k: v for k, v in mert_config.items() if k not in IGNORED_MERT_KEYS}
    return HubertConfig(**kwargs)


def _read_json(source: str, name: str) -> dict | None:
    """Read ``name`` from a local folder, or from the hub cache / hub for an id (online users)."""
    if os.path.isdir(source):
        p = Path(source) / name
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{p}: not valid JSON ({e.msg})") from None
    from huggingface_hub import hf_hub_download  # only for hub ids

    try:
        return json.loads(Path(hf_hub_download(source, name)).read_text())
    except Exception as e:  # offline, missing repo or missing file
        if name == "config.json":
            raise CheckpointError(f"{source}: cannot read config.json (not a local folder and the "
                                  f"hub is unreachable or has no such model: {e})") from None
        return None


class MertEncoder(Encoder):
    """A MERT (HuBERT-architecture) encoder, frozen, with hidden-state aggregation.

    ``layers``: ``"all"`` (equal mean of all hidden states, MusiLingo) or a list of hidden-state
    indices (0 = input to the first layer, ``num_hidden_layers`` = final output).
    """

    def __init__(self, model: HubertModel, do_normalize: bool = False, layers: str | list[int] = "all",
                 sample_rate: int = 24000, source: str = "random", weights_id: str = ""):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.do_normalize = do_normalize
        n_states = model.config.num_hidden_layers + 1
        self.layers = list(range(n_states)) if layers == "all" else [int(i) for i in layers]
        if not self.layers or any(i < 0 or i >= n_states for i in self.layers):
            raise CheckpointError(f"layers must be 'all' or indices in [0, {n_states - 1}], got {layers}")
        self.layers_spec = layers
        self.sample_rate = sample_rate
        self.hop = 1
        for s in model.config.conv_stride:
            self.hop *= s
        self.frame_rate = sample_rate / self.hop  # 24000 / 320 = 75 frames/s for MERT
        self.feature_dim = model.config.hidden_size
        self.source = source
        self.weights_id = weights_id

    @classmethod
    def from_pretrained(cls, source: str, layers: str | list[int] = "all",
                        dtype: torch.dtype = torch.float32) -> "MertEncoder":
        """Load a MERT checkpoint from a local folder or hub id (config.json + weights)."""
        cfg = _read_json(source, "config.json")
        config = hubert_config_from_mert(cfg)
        pre = _read_json(source, "preprocessor_config.json") or {}
        do_normalize = bool(pre.get("do_normalize", False))
        sample_rate = int(pre.get("sampling_rate", 24000))
        if os.path.isdir(source) and not any(
            (Path(source) / f).is_file() for f in ("model.safetensors", "pytorch_model.bin",
                                                   "model.safetensors.index.json",
                                                   "pytorch_model.bin.index.json")):
            raise CheckpointError(f"{source}: no model.safetensors or pytorch_model.bin found")
        from musilingo.llm import quiet_loading  # no "Loading weights" bar unless --verbose

        try:
            with quiet_loading():
                model, info = HubertModel.from_pretrained(source, config=config, dtype=dtype,
                                                          output_loading_info=True)
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(f"{source}: cannot load MERT weights: {e}") from None
        missing = [k for k in info.get("missing_keys", []) if not k.startswith(UNUSED_PARAM_PREFIXES)]
        if missing:
            raise CheckpointError(f"{source}: checkpoint lacks {len(missing)} encoder weights, "
                                  f"e.g. {missing[:3]} (is this a MERT/HuBERT checkpoint?)")
        mismatched = info.get("mismatched_keys", [])
        if mismatched:
            raise CheckpointError(f"{source}: weights of the wrong shape: {mismatched[:3]}")
        weights_id = _weights_fingerprint(source)
        return cls(model, do_normalize=do_normalize, layers=layers, sample_rate=sample_rate,
                   source=source, weights_id=weights_id)

    def num_frames(self, num_samples: int) -> int:
        return int(self.model._get_feat_extract_output_lengths(int(num_samples)))

    def cache_key(self) -> dict:
        return {"name": "mert", "source": self.source, "weights": self.weights_id,
                "layers": self.layers, "do_normalize": self.do_normalize,
                "sample_rate": self.sample_rate}

    def _conv_features(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv features per distinct length: [B, T, C] padded with zeros, and the frame mask."""
        B = audio.shape[0]
        n_frames = [self.num_frames(int(n)) for n in lengths]
        T = max(n_frames)
        C = self.model.config.conv_dim[-1]
        out = audio.new_zeros(B, T, C, dtype=next(self.model.parameters()).dtype)
        for n in sorted(set(int(x) for x in lengths)):
            idx = [i for i in range(B) if int(lengths[i]) == n]
            x = audio[idx, :n].to(out.dtype)
            if self.do_normalize:  # zero-mean unit-variance over the clip's own samples
                x = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, unbiased=False, keepdim=True) + 1e-7)
            f = self.model.feature_extractor(x).transpose(1, 2)  # [b, T_n, C]
            out[idx, : f.shape[1]] = f
        mask = torch.arange(T, device=audio.device)[None, :] < torch.tensor(n_frames, device=audio.device)[:, None]
        return out, mask

    @torch.no_grad()
    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """audio [B, S] at 24 kHz, lengths [B] -> frames [B, T, hidden] (75 frames/s), mask [B, T]."""
        from transformers.masking_utils import create_bidirectional_mask

        feats, mask = self._conv_features(audio, lengths)
        h = self.model.feature_projection(feats)
        enc = self.model.encoder
        h = h.masked_fill(~mask[..., None], 0.0)
        attn = None if bool(mask.all()) else create_bidirectional_mask(
            config=self.model.config, inputs_embeds=h, attention_mask=mask)
        h = h + enc.pos_conv_embed(h)
        wanted = set(self.layers)
        acc = torch.zeros_like(h)
        n_layers = len(enc.layers)
        for i, layer in enumerate(enc.layers):
            if i in wanted:  # hidden state i = the input to layer i
                acc = acc + h
            h = layer(h, attention_mask=attn)
            h = h[0] if isinstance(h, tuple) else h
        h = enc.layer_norm(h)
        if n_layers in wanted:  # the last state is the final LayerNorm output
            acc = acc + h
        frames = (acc / len(self.layers)).masked_fill(~mask[..., None], 0.0)
        return EncoderOutput(frames.float(), mask)


def _weights_fingerprint(source: str) -> str:
    """A cheap identity for cached features: file names, sizes and mtimes (or the hub id)."""
    if not os.path.isdir(source):
        return source
    h = hashlib.sha256()
    for p in sorted(Path(source).iterdir()):
        if p.suffix in (".bin", ".safetensors", ".json"):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


# A HuBERT/MERT-shaped encoder small enough for tests: the real conv strides (75 frames/s at
# 24 kHz, so token counts match MERT's) with tiny widths and 2 layers.
TINY_MERT_CONFIG = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=[16] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_bias=False, feat_extract_norm="group", do_stable_layer_norm=True, feat_proj_layer_norm=True,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, layer_norm_eps=1e-5,
    hidden_act="gelu", feat_extract_activation="gelu", mask_time_prob=0.0,
)

# MERT-v1-330M's published shape (random weights here: for speed benchmarks only).
MERT_330M_CONFIG = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
    conv_dim=[512] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_bias=False, feat_extract_norm="group", do_stable_layer_norm=True, feat_proj_layer_norm=True,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, layer_norm_eps=1e-5,
    hidden_act="gelu", feat_extract_activation="gelu", mask_time_prob=0.0,
)


def random_mert(config: dict = TINY_MERT_CONFIG, seed: int = 0, layers: str | list[int] = "all",
                dtype: torch.dtype = torch.float32) -> MertEncoder:
    """A randomly initialised MERT-shaped encoder (deterministic for ``seed``)."""
    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**config)).to(dtype)
    name = "random-mert-" + hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    return MertEncoder(model, layers=layers, source=name, weights_id=f"seed{seed}")
