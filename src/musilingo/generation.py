"""How text is decoded: :class:`GenerationOptions` and its named presets (``greedy``, ``paper``,
``beam``), the one list of decoding names that the CLI, the server and evaluation offer, and the
one list of weight precisions an inference model can decode in (``Precision``) and of the runtimes
greedy answers are decoded by (``Runtime``).

No torch here (the CLI reads the names without loading a model); :meth:`MusiLingo.generate
<musilingo.model.MusiLingo.generate>` applies the options.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

from musilingo.errors import ConfigError

#: greedy; paper = sampling T=0.1 top_p=0.5 as published; beam = 4 beams
Decoding = Literal["greedy", "paper", "beam"]
DECODINGS: tuple[str, ...] = get_args(Decoding)
#: auto (the LLM's own dtype) | float32 | bfloat16 | int8 (weight-only, CPU) |
#: int8-dynamic (CPU, torch.ao dynamic quantisation; loses accuracy, see docs/usage.md)
Precision = Literal["auto", "float32", "bfloat16", "int8", "int8-dynamic"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
#: torch (transformers, any LLM, CPU or GPU) | llama.cpp (LLaMA-architecture LLMs on CPU, through
#: llama-cpp-python: ``musilingo.llamacpp``) | auto (llama.cpp where it can run: CPU, a LLaMA-
#: architecture LLM, llama-cpp-python installed, a precision it has; torch otherwise)
Runtime = Literal["auto", "torch", "llama.cpp"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)


@dataclass
class GenerationOptions:
    """How text is decoded. Named presets: ``greedy`` (default), ``paper``, ``beam``."""

    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    num_beams: int = 1
    seed: int | None = None  # for sampling

    @classmethod
    def named(cls, name: str, max_new_tokens: int | None = None) -> "GenerationOptions":
        """The options of decoding ``name`` (one of :data:`DECODINGS`), with ``max_new_tokens``
        replacing the preset's length when given."""
        presets = {
            "greedy": cls(),
            # the published evaluation: sampling, temperature 0.1, top_p 0.5, one beam, 300 tokens
            "paper": cls(max_new_tokens=300, do_sample=True, temperature=0.1, top_p=0.5, seed=42),
            "beam": cls(num_beams=4),
        }
        if name not in presets:
            raise ConfigError(f"unknown decoding {name!r}; choose one of {', '.join(DECODINGS)}")
        opts = presets[name]
        return replace(opts, max_new_tokens=max_new_tokens) if max_new_tokens else opts
