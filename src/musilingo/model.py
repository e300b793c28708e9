"""The MusiLingo model: ``encoder`` -> time pooling -> ``projector`` -> ``llm``, and the one
inference object shared by the Python API, the CLI, the evaluator and the server.

Audio enters the LLM through placeholder positions: the prompt is rendered with ``AUDIO_SLOT``
ids (``prompts.py``), the slots are embedded as zeros and the projected audio tokens are
scattered into them (``masked_scatter``); a count mismatch is an error, never silent.

Long files are cut into windows (``config.window_s``, 30 s by default); each window is answered
with its timestamps and, when there is more than one, a whole-track answer is written from all
windows' pooled features averaged down to the token count of one full window (so the LLM sees
the whole track in the shape it was trained on).

Weights: only the projector (and LoRA adapters when used) is trainable; the encoder and the LLM are
frozen once, at construction. A model folder holds ``config.json`` + ``projector.safetensors``
(+ ``adapter/``). This module does not train; see ``musilingo.train``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np
import torch
from torch import nn

from musilingo import __version__
from musilingo.analysis.facts import Facts, merge_facts
from musilingo.audio import MAX_DURATION_S, check_samples, load_audio, split_windows
from musilingo.config import ModelConfig, resolve_config
from musilingo.encoders import build_encoder
from musilingo.encoders.base import num_pooled_tokens
from musilingo.errors import AudioError, CheckpointError, ConfigError, MusiLingoError
from musilingo.features import FeatureSpec
from musilingo.generation import GenerationOptions
from musilingo.llm import StopStrings, greedy_decode, inference_llm, input_dtype, load_llm
from musilingo.projector import Projector
from musilingo.prompts import AUDIO_SLOT, CAPTION_INSTRUCTION, Turn, get_prompt_style

log = logging.getLogger(__name__)

AudioInput = Union[str, os.PathLike, tuple]  # a path, or (samples [S] float32, sample_rate)


class UntrainedModelWarning(UserWarning):
    """The model's projection has not been trained: its answers ignore the audio."""


@dataclass
class Answer:
    """The model's text about one file (or one window of it)."""

    source: str
    question: str
    text: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    windows: list["Answer"] = field(default_factory=list)
    error: str | None = None
    facts: str | None = None
    """the measured-facts line the model read (models with ``config.facts`` only)"""

    def to_json(self) -> dict:
        d = asdict(self)
        d["windows"] = [w.to_json() for w in self.windows]
        for k in ("windows", "facts"):
            if not d[k]:
                del d[k]
        return d


@dataclass
class PreparedAudio:
    """A decoded file cut into windows, with pooled encoder features per window."""

    source: str
    duration_s: float
    spans: list[tuple[float, float]]
    features: list[torch.Tensor]  # per window: [n_tokens, feature_dim]
    facts: list[Facts | None] = field(default_factory=list)
    """per window, when the model reads measured facts (``config.facts``); else empty"""


class MusiLingo(nn.Module):
    """encoder (frozen) -> pooling -> projector (trained) -> llm (frozen, optional LoRA)."""

    def __init__(self, config: ModelConfig, device: str | torch.device = "cpu",
                 adapter_dir: str | None = None, adapter_trainable: bool = False):
        super().__init__()
        self.config = config
        self.device_ = torch.device(device)
        self.encoder = build_encoder(config.encoder).to(self.device_)
        self.encoder.requires_grad_(False).eval()
        self.llm, self.tokenizer = load_llm(config.llm, self.device_, adapter_dir=adapter_dir,
                                            adapter_trainable=adapter_trainable)
        hidden = self.llm.get_input_embeddings().embedding_dim
        self.projector = Projector(config.projector.kind, self.encoder.feature_dim, hidden,
                                   feature_norm=config.projector.feature_norm,
                                   summary_token=config.projector.summary_token).to(self.device_)
        self.prompt = get_prompt_style(config.prompt_style, self.tokenizer, config.system_prompt)
        # the LLM's decoding copy (``prepare_inference``); kept out of the module tree, so it is in
        # neither parameters() nor state_dict()
        object.__setattr__(self, "_decode_llm", None)
        object.__setattr__(self, "_runtime", "torch")

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, name_or_path: str = "default", device: str | None = None,
                        llm: str | None = None, encoder_path: str | None = None,
                        trainable: bool = False, overrides: dict | None = None,
                        precision: str | None = None, fast_decode: bool | None = None,
                        runtime: str | None = None) -> "MusiLingo":
        """Load a model folder or a preset (``paper``, ``default``, ``tiny``).

        ``llm`` / ``encoder_path`` override where the LLM / MERT weights come from (e.g. a local
        Vicuna folder for the ``paper`` preset). ``device``: ``cpu``, ``cuda``, ``cuda:1`` or None
        (= cuda when available). ``trainable`` loads a saved LoRA adapter for further training;
        ``overrides`` replaces config fields before the model is built; nested mappings are merged
        (``{"llm": {"lora": {"target_modules": [...]}}}`` keeps the other ``llm`` fields).
        ``precision`` / ``fast_decode`` / ``runtime`` replace ``config.inference``'s (see
        ``InferenceConfig``);
        a model loaded not ``trainable`` is prepared for answering (:meth:`prepare_inference`).
        """
        device = resolve_device(device)
        config, folder = resolve_config(name_or_path)
        if llm:
            config.llm.name_or_path = llm
        if encoder_path:
            config.encoder.path = encoder_path
        inference = {k: v for k, v in (("precision", precision), ("fast_decode", fast_decode),
                                       ("runtime", runtime)) if v is not None}
        if inference:
            overrides = _merged(overrides or {}, {"inference": inference})
        if overrides:
            config = ModelConfig.from_dict(_merged(config.to_dict(), overrides))
        adapter = folder / "adapter" if folder is not None and (folder / "adapter").is_dir() else None
        model = cls(config, device=device, adapter_dir=str(adapter) if adapter else None,
                    adapter_trainable=trainable)
        if folder is not None and (folder / "projector.safetensors").is_file():
            model.load_projector(folder / "projector.safetensors")
        elif config.trained:
            raise CheckpointError(f"{folder}: config says trained but projector.safetensors is missing")
        if not config.trained and not trainable:
            warnings.warn(f"model {name_or_path!r} has an UNTRAINED projection: its answers do not "
                          "depend on the audio (train one with `musilingo train`)",
                          UntrainedModelWarning, stacklevel=2)
        if not trainable:
            model.prepare_inference()
        return model

    def prepare_inference(self) -> None:
        """Make the LLM's decoding copy for answering only, as ``config.inference`` says: LoRA
        merged into the weights, weights in its ``precision`` (``llm.inference_llm``). Call it after
        moving the model to its device; training the adapters afterwards does not reach the copy
        (``from_pretrained(trainable=True)`` never makes one). Runtime llama.cpp: the merged copy is
        written as a GGUF file (cached by weights) and decoded by llama.cpp."""
        cfg = self.config.inference
        runtime = cfg.runtime
        if runtime == "auto":
            from musilingo.llamacpp import can_run

            runtime = "llama.cpp" if cfg.fast_decode and can_run(self.llm.config, self.device,
                                                                 cfg.precision) else "torch"
        if runtime == "llama.cpp":
            from musilingo.llamacpp import LlamaCppLM, cached_gguf, check_convertible, require_llama_cpp

            if self.device.type != "cpu":
                raise ConfigError("runtime llama.cpp runs on CPU; use runtime torch on a GPU")
            require_llama_cpp()
            check_convertible(self.llm.config)
            gguf = cached_gguf(self.llm, cfg.precision)
            decode = LlamaCppLM(gguf, self.llm.config.hidden_size)
        else:
            decode = inference_llm(self.llm, cfg.precision) if cfg.fast_decode else None
        object.__setattr__(self, "_decode_llm", decode)
        object.__setattr__(self, "_runtime", runtime)

    @property
    def runtime(self) -> str:
        """The runtime greedy answers are decoded by: torch or llama.cpp (``auto`` resolved)."""
        return self._runtime

    @property
    def decode_llm(self):
        """What greedy answers are decoded with: the decoding copy (an ``nn.Module``, or a
        ``llamacpp.LlamaCppLM`` for runtime llama.cpp), or ``llm`` itself."""
        return self._decode_llm if self._decode_llm is not None else self.llm

    def load_projector(self, path: str | os.PathLike) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
        own = self.projector.state_dict()
        if set(state) != set(own):
            raise CheckpointError(f"{path}: projector tensors {sorted(state)} do not match the "
                                  f"configured {self.config.projector.kind} projector"
                                  f"{' with summary token' if self.projector.summary is not None else ''}"
                                  f" {sorted(own)}")
        for k, v in state.items():
            if v.shape != own[k].shape:
                raise CheckpointError(f"{path}: {k} has shape {tuple(v.shape)}, the model needs "
                                      f"{tuple(own[k].shape)} (encoder dim {self.encoder.feature_dim}"
                                      f" -> LLM dim {self.projector.out_dim})")
        self.projector.load_state_dict(state)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Projector weights (+ buffers) only; LoRA weights are saved by peft separately."""
        return {k: v.detach().cpu().contiguous() for k, v in self.projector.state_dict().items()}

    def save_pretrained(self, folder: str | os.PathLike, extra: dict | None = None) -> None:
        """Write a self-describing model folder, each file atomically (temp + rename)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {"musilingo_version": __version__, **self.config.to_dict()}
        _atomic_write(folder / "config.json", json.dumps(cfg, indent=2) + "\n")
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        os.close(fd)
        save_file(self.trainable_state_dict(), tmp, metadata={"format": "pt"})
        os.replace(tmp, folder / "projector.safetensors")
        if self.has_lora:
            tmpd = Path(tempfile.mkdtemp(dir=folder, prefix=".adapter."))
            self.llm.save_pretrained(tmpd)
            # peft always writes a placeholder model card naming this machine's LLM path; config.json
            # already describes the model, so the card is dropped
            (tmpd / "README.md").unlink(missing_ok=True)
            if (folder / "adapter").exists():
                shutil.rmtree(folder / "adapter")
            os.rename(tmpd, folder / "adapter")
        if extra:
            for name, text in extra.items():
                _atomic_write(folder / name, text)

    @property
    def has_lora(self) -> bool:
        return hasattr(self.llm, "peft_config")

    @property
    def device(self) -> torch.device:
        return self.device_

    # ------------------------------------------------------------------ audio -> features
    def max_tokens_per_window(self) -> int:
        n = int(self.config.window_s * self.encoder.sample_rate)
        return num_pooled_tokens(self.encoder.num_frames(n), self.config.pool_window)

    @property
    def feature_spec(self) -> FeatureSpec:
        """What decides this model's audio features (encoder, pooling, window, loudness)."""
        c = self.config
        return FeatureSpec(self.encoder, c.pool_window, c.window_s, c.loudness_lufs, c.facts)

    def pooled_features(self, clips: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Encode and pool a batch of mono clips at ``encoder.sample_rate``: per clip [n, D]."""
        return self.feature_spec.encode(clips, self.device_)

    # ------------------------------------------------------------------ the answering rule
    def track_features(self, windows: Sequence[torch.Tensor]) -> torch.Tensor:
        """The whole track's features: the windows' features ([n_i, D] each) concatenated and
        averaged down to at most :meth:`max_tokens_per_window` tokens: [n, D]."""
        allf = torch.cat(list(windows), dim=0)
        max_tokens = self.max_tokens_per_window()
        if len(allf) <= max_tokens:
            return allf
        return torch.nn.functional.adaptive_avg_pool1d(allf.T[None], max_tokens)[0].T

    def answer_plan(self, windows: Sequence[torch.Tensor], per_window: bool = True,
                    whole_track: bool = True) -> list[tuple[int | None, torch.Tensor]]:
        """What is answered for one clip, given its windows' features: the rule every caller
        shares (:meth:`answer_features`, the server, evaluation).

        A clip of one window is answered once. A longer clip is answered per window (when
        ``per_window``) and for the whole track (when ``whole_track``, or always when not
        ``per_window``). Returns ``(window index, or None for the whole track, features [n, D])``.
        """
        if not windows:
            raise ValueError("a clip needs the features of at least one window")
        if len(windows) == 1 or not per_window:
            return [(None, self.track_features(windows))]
        plan: list[tuple[int | None, torch.Tensor]] = list(enumerate(windows))
        if whole_track:
            plan.append((None, self.track_features(windows)))
        return plan

    def facts_line(self, windows: Sequence[Facts | None], window: int | None) -> str | None:
        """The facts line the prompt carries for one entry of :meth:`answer_plan`: the window's
        facts, or for the whole track (``window`` None) the windows' facts merged
        (:func:`musilingo.analysis.facts.merge_facts`). None when the model reads no facts or
        none could be measured."""
        if not self.config.facts:
            return None
        if window is not None:
            f = windows[window] if window < len(windows) else None
            return f.summary() if f is not None else None
        measured = [f for f in windows if f is not None]
        return merge_facts(measured).summary() if measured else None

    def answer_features(self, clips: Sequence[Sequence[torch.Tensor]],
                        conversations: Sequence[list[Turn]],
                        options: GenerationOptions | None = None, batch_size: int = 8,
                        per_window: bool = True, whole_track: bool = True,
                        facts: Sequence[Sequence[Facts | None]] | None = None,
                        ) -> list[tuple[str | None, list[str]]]:
        """Answer the last turn of each conversation about its clip, from the clip's window
        features (``clips[i]``: a list of [n, D] tensors), following :meth:`answer_plan`, with
        at most ``batch_size`` answers per :meth:`generate` call. A model that reads measured
        facts needs ``facts[i]``: the clip's facts per window (:meth:`prepare` or a feature
        cache with facts gives them).

        Returns per clip ``(whole-track answer or None, per-window answers)``.
        """
        if len(clips) != len(conversations):
            raise ValueError(f"{len(clips)} clips but {len(conversations)} conversations")
        if self.config.facts and (facts is None or len(facts) != len(clips)):
            raise ValueError("this model reads measured facts: pass the facts of each clip's windows")
        jobs = [(c, w, f) for c, windows in enumerate(clips)
                for w, f in self.answer_plan(windows, per_window, whole_track)]
        lines = [self.facts_line(facts[c], w) if facts is not None else None for c, w, _ in jobs]
        out: list[tuple[str | None, list[str]]] = [(None, []) for _ in clips]
        for b in range(0, len(jobs), batch_size):
            chunk = jobs[b: b + batch_size]
            texts = self.generate([f for _, _, f in chunk], [conversations[c] for c, _, _ in chunk],
                                  options, facts=lines[b: b + batch_size])
            for (c, w, _), text in zip(chunk, texts):
                if w is None:
                    out[c] = (text, out[c][1])
                else:
                    out[c][1].append(text)
        return out

    def load(self, item: AudioInput, max_duration_s: float | None = MAX_DURATION_S) -> tuple[str, np.ndarray]:
        """Decode one input to mono at the encoder's rate: (name, samples)."""
        sr = self.encoder.sample_rate
        if isinstance(item, tuple):  # (samples, rate[, name]) already decoded, e.g. by the caller
            name = item[2] if len(item) > 2 else "<array>"
            return name, check_samples(name, item[0], int(item[1]), sr, max_duration_s)[0]
        samples, _ = load_audio(item, sr, max_duration_s=max_duration_s)
        return str(item), samples

    def prepare(self, items: Sequence[AudioInput], batch_size: int = 8,
                max_duration_s: float | None = MAX_DURATION_S) -> list[PreparedAudio | AudioError]:
        """Decode, window and encode several inputs; a bad input gives its AudioError in place."""
        return self._encode_decoded(self._decode_all(items, max_duration_s), batch_size)

    def _decode_all(self, items: Sequence[AudioInput], max_duration_s: float | None,
                    ) -> list[tuple[str, np.ndarray] | AudioError]:
        """:meth:`load` each input; a bad one gives its AudioError in place (no torch: this is
        what :meth:`iter_answers` runs on its decode thread)."""
        out: list[tuple[str, np.ndarray] | AudioError] = []
        for item in items:
            try:
                out.append(self.load(item, max_duration_s))
            except AudioError as e:
                out.append(e)
        return out

    def _encode_decoded(self, decoded: Sequence[tuple[str, np.ndarray] | AudioError],
                        batch_size: int) -> list[PreparedAudio | AudioError]:
        """Window and encode decoded inputs (``(name, samples)``; AudioErrors stay in place)."""
        sr = self.encoder.sample_rate
        out: list[PreparedAudio | AudioError] = []
        jobs: list[tuple[int, np.ndarray]] = []
        for item in decoded:
            if isinstance(item, AudioError):
                out.append(item)
                continue
            name, samples = item
            wins = split_windows(samples, sr, self.config.window_s)
            out.append(PreparedAudio(name, len(samples) / sr, [(w.start_s, w.end_s) for w in wins], []))
            if self.config.facts:
                out[-1].facts = self.feature_spec.measure([w.samples for w in wins])
            jobs += [(len(out) - 1, w.samples) for w in wins]
        for b in range(0, len(jobs), batch_size):
            chunk = jobs[b: b + batch_size]
            feats = self.pooled_features([s for _, s in chunk])
            for (idx, _), f in zip(chunk, feats):
                out[idx].features.append(f)
        return out

    # ------------------------------------------------------------------ features -> LLM inputs
    def build_inputs(self, features: Sequence[torch.Tensor], conversations: Sequence[list[Turn]],
                     padding_side: str = "left", train_last_only: bool = False,
                     max_answer_tokens: int | None = None, style=None,
                     facts: Sequence[str | None] | None = None) -> dict[str, torch.Tensor]:
        """Render prompts, embed them and scatter the projected audio into the audio slots.

        features: per sample [n_i, D] pooled encoder features; conversations: per sample a list
        of turns; facts: per sample the measured-facts line after the audio (or None). Returns
        inputs_embeds [B, L, H], attention_mask [B, L], position_ids [B, L] and labels [B, L]
        (-100 outside the answer tokens).
        """
        style = style or self.prompt
        facts = list(facts) if facts is not None else [None] * len(features)
        if len(facts) != len(features):
            raise ValueError(f"{len(features)} samples but {len(facts)} facts lines")
        rendered = [style.render(conv, self.tokenizer, n_audio=self.projector.num_tokens(len(f)),
                                 train_last_only=train_last_only,
                                 max_answer_tokens=max_answer_tokens, facts=line)
                    for f, conv, line in zip(features, conversations, facts)]
        L = max(len(r) for r in rendered)
        B = len(rendered)
        pad_id = self.tokenizer.pad_token_id
        ids = torch.full((B, L), pad_id, dtype=torch.long)
        attn = torch.zeros(B, L, dtype=torch.long)
        labels = torch.full((B, L), -100, dtype=torch.long)
        audio_mask = torch.zeros(B, L, dtype=torch.bool)
        for i, r in enumerate(rendered):
            n = len(r)
            sl = slice(L - n, L) if padding_side == "left" else slice(0, n)
            ids[i, sl] = torch.tensor(r.ids)
            attn[i, sl] = 1
            audio_mask[i, sl] = torch.tensor(r.audio_mask)
            lab = torch.tensor(r.ids)
            lab[~torch.tensor(r.loss_mask)] = -100
            labels[i, sl] = lab
        ids = ids.to(self.device_)
        text_ids = ids.masked_fill(ids == AUDIO_SLOT, pad_id)
        embeds = self.llm.get_input_embeddings()(text_ids)
        audio = self.projector.project_clips([f.to(self.device_) for f in features]).to(embeds.dtype)
        audio_mask = audio_mask.to(self.device_)
        if int(audio_mask.sum()) != audio.shape[0]:
            raise ValueError(f"{int(audio_mask.sum())} audio slots but {audio.shape[0]} audio tokens")
        embeds = embeds.masked_scatter(audio_mask[..., None].expand_as(embeds), audio)
        attn = attn.to(self.device_)
        position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
        return {"inputs_embeds": embeds, "attention_mask": attn, "position_ids": position_ids,
                "labels": labels.to(self.device_)}

    def forward(self, features: Sequence[torch.Tensor], conversations: Sequence[list[Turn]],
                **render_kwargs) -> torch.Tensor:
        """Training forward pass (what DDP wraps): the loss of :meth:`loss`."""
        return self.loss(features, conversations, **render_kwargs)

    def loss(self, features: Sequence[torch.Tensor], conversations: Sequence[list[Turn]],
             **render_kwargs) -> torch.Tensor:
        """Mean cross-entropy over answer tokens (teacher forcing), right padding."""
        batch = self.build_inputs(features, conversations, padding_side="right", **render_kwargs)
        out = self.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"], labels=batch["labels"])
        return out.loss

    @torch.no_grad()
    def generate(self, features: Sequence[torch.Tensor], conversations: Sequence[list[Turn]],
                 options: GenerationOptions | None = None,
                 facts: Sequence[str | None] | None = None) -> list[str]:
        """Generate the answer to the last (unanswered) turn of each conversation, batched
        (``facts``: per sample the facts line, for a model that reads them)."""
        options = options or GenerationOptions(max_new_tokens=self.config.max_new_tokens)
        batch = self.build_inputs(features, conversations, padding_side="left", facts=facts)
        eos = [t for t in {self.tokenizer.eos_token_id} if t is not None]
        if self.config.inference.fast_decode and not options.do_sample and options.num_beams == 1:
            out = self._greedy(batch, options.max_new_tokens, eos)
        else:
            out = self._hf_generate(batch, options, eos)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=False)
        special = [t for t in (self.tokenizer.pad_token, self.tokenizer.eos_token) if t]
        cleaned = []
        for t in texts:
            t = self.prompt.clean(t)
            for s in special:
                t = t.replace(s, "")
            cleaned.append(t.strip())
        return cleaned

    def _greedy(self, batch: dict[str, torch.Tensor], max_new_tokens: int, eos: list[int]) -> torch.Tensor:
        """New tokens [B, T] from ``llm.greedy_decode`` on :attr:`decode_llm`."""
        llm = self.decode_llm
        stop = getattr(self, "_stop", None)
        if stop is None:
            stop = StopStrings(self.tokenizer, self.prompt.stop_strings)
            object.__setattr__(self, "_stop", stop)
        if not isinstance(llm, nn.Module):  # runtime llama.cpp
            return llm.greedy_decode(batch["inputs_embeds"], batch["attention_mask"], max_new_tokens,
                                     eos, self.tokenizer.pad_token_id, stop)
        was_training = llm.training
        llm.eval()
        try:
            return greedy_decode(llm, batch["inputs_embeds"].to(input_dtype(llm)),
                                 batch["attention_mask"], max_new_tokens, eos,
                                 self.tokenizer.pad_token_id, stop)
        finally:
            llm.train(was_training)

    def _hf_generate(self, batch: dict[str, torch.Tensor], options: GenerationOptions,
                     eos: list[int]) -> torch.Tensor:
        """New tokens [B, T] from transformers' ``generate()`` on ``llm`` (the reference path)."""
        kwargs = dict(max_new_tokens=options.max_new_tokens, num_beams=options.num_beams,
                      do_sample=options.do_sample, pad_token_id=self.tokenizer.pad_token_id)
        if options.do_sample:
            kwargs.update(temperature=options.temperature, top_p=options.top_p)
            if options.seed is not None:
                torch.manual_seed(options.seed)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self.prompt.stop_strings:
            kwargs.update(stop_strings=self.prompt.stop_strings, tokenizer=self.tokenizer)
        was_training = self.llm.training
        self.llm.eval()
        out = self.llm.generate(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                                eos_token_id=eos or None, **kwargs)
        self.llm.train(was_training)
        return out

    # ------------------------------------------------------------------ high-level API
    def iter_answers(self, items: Sequence[AudioInput], questions: str | Sequence[str],
                     batch_size: int = 8, options: GenerationOptions | None = None,
                     whole_track: bool = True, max_duration_s: float | None = MAX_DURATION_S,
                     ) -> Iterator[tuple[int, Answer]]:
        """Answer a question about each input, yielding ``(index, Answer)`` as each file finishes.

        Bad inputs yield an Answer with ``error`` set; the others go on. Files are processed in
        groups of ``batch_size`` files so short files share encoder and generate calls, and they
        are pipelined: a background thread decodes (reads, downmixes, resamples) the next group
        while this one is encoded and answered. The answers are those of one group at a time.
        """
        qs = [questions] * len(items) if isinstance(questions, str) else list(questions)
        if len(qs) != len(items):
            raise ValueError("one question per input, or one question for all")
        groups = [list(range(i, min(i + batch_size, len(items))))
                  for i in range(0, len(items), batch_size)]
        if not groups:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="musilingo-decode") as decoder:
            def decode(group: list[int]):
                return decoder.submit(self._decode_all, [items[k] for k in group], max_duration_s)

            pending = decode(groups[0])
            for n, group in enumerate(groups):
                decoded = pending.result()
                if n + 1 < len(groups):
                    pending = decode(groups[n + 1])  # overlaps this group's encoding + generation
                yield from self._answer_group(group, self._encode_decoded(decoded, batch_size),
                                              qs, options, batch_size, whole_track)

    def _answer_group(self, group: list[int], prepared: list[PreparedAudio | AudioError],
                      qs: list[str], options: GenerationOptions | None, batch_size: int,
                      whole_track: bool) -> Iterator[tuple[int, Answer]]:
        """The answers of one group of :meth:`iter_answers` (``prepared[g]`` is input ``group[g]``)."""
        ok = [g for g, p in enumerate(prepared) if not isinstance(p, AudioError)]
        facts = [prepared[g].facts for g in ok] if self.config.facts else None
        texts = self.answer_features([prepared[g].features for g in ok],
                                     [[Turn(qs[group[g]])] for g in ok], options, batch_size,
                                     whole_track=whole_track, facts=facts)
        answered = dict(zip(ok, texts))
        for g, p in enumerate(prepared):
            q = qs[group[g]]
            if isinstance(p, AudioError):
                yield group[g], Answer(source=p.path, question=q, error=p.problem)
                continue
            track, window_texts = answered[g]
            ans = Answer(source=p.source, question=q, text=track, start_s=0.0,
                         end_s=p.duration_s, facts=self.facts_line(p.facts, None))
            ans.windows = [Answer(source=p.source, question=q, text=t, start_s=s, end_s=e,
                                  facts=self.facts_line(p.facts, w))
                           for w, ((s, e), t) in enumerate(zip(p.spans, window_texts))]
            yield group[g], ans

    def caption(self, items: AudioInput | Sequence[AudioInput], **kwargs) -> Answer | list[Answer]:
        """Caption one input (returns an Answer) or several (returns a list, in order)."""
        return self.ask(items, CAPTION_INSTRUCTION, **kwargs)

    def ask(self, items: AudioInput | Sequence[AudioInput], question: str, **kwargs) -> Answer | list[Answer]:
        """Answer ``question`` about one input (an Answer) or several (a list, in order)."""
        single = isinstance(items, (str, os.PathLike, tuple))
        seq = [items] if single else list(items)
        res = [None] * len(seq)
        for idx, ans in self.iter_answers(seq, question, **kwargs):
            res[idx] = ans
        return res[0] if single else res

    def start_chat(self, item: AudioInput, max_duration_s: float | None = MAX_DURATION_S) -> "Chat":
        """Begin a multi-turn conversation about one input (its audio stays in the first turn)."""
        prepared = self.prepare([item], max_duration_s=max_duration_s)[0]
        if isinstance(prepared, AudioError):
            raise prepared
        return Chat(self, prepared)

    def chat(self, item: AudioInput, messages: Iterable[str],
             options: GenerationOptions | None = None) -> list[str]:
        """Answer several messages in turn, keeping the conversation; returns the replies."""
        c = self.start_chat(item)
        return [c.ask(m, options) for m in messages]


class Chat:
    """A conversation about one clip: ``chat.ask(question)`` returns the reply and keeps history."""

    def __init__(self, model: MusiLingo, prepared: PreparedAudio, max_turns: int = 16):
        self.model = model
        self.audio = prepared
        self.features = model.track_features(prepared.features)
        self.facts = model.facts_line(prepared.facts, None)
        """the facts line the first turn carries (None for a model that reads no facts)"""
        self.turns: list[Turn] = []
        self.max_turns = max_turns

    def ask(self, question: str, options: GenerationOptions | None = None) -> str:
        if not question.strip():
            raise MusiLingoError("empty question")
        turns = self.turns[-(self.max_turns - 1):] + [Turn(question)] if self.max_turns > 1 else [Turn(question)]
        reply = self.model.generate([self.features], [turns], options, facts=[self.facts])[0]
        self.turns = turns[:-1] + [Turn(question, reply)]
        return reply


def load_model(name_or_path: str, device: str | None = None, llm: str | None = None,
               precision: str | None = None, runtime: str | None = None) -> tuple[MusiLingo, list[str]]:
    """``MusiLingo.from_pretrained`` for entry points (CLI, evaluator, server): the untrained-model
    warning comes back as a note for the caller to show its own way, not as a Python warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UntrainedModelWarning)
        model = MusiLingo.from_pretrained(name_or_path, device=device, llm=llm, precision=precision,
                                          runtime=runtime)
    notes = []
    for w in caught:
        if issubclass(w.category, UntrainedModelWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, notes


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return str(device)


def _atomic_write(path: Path, text: str) -> None:
    from musilingo.data.manifest import atomic_write_text

    atomic_write_text(path, text)


def _merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied; mappings on both sides are merged key by key."""
    out = dict(base)
    for k, v in overrides.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
