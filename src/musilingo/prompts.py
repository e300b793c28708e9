"""Prompt styles: how a conversation about a clip becomes token ids, audio slots and a loss mask.

Styles (saved by name with every checkpoint):

- ``musilingo``: the paper's template. One turn renders as
  ``###Human: <Audio><AudioHere></Audio> {question} ###Assistant: `` and the answer is followed by
  the end symbol ``###``. Input = [BOS] + "###Human: <Audio>" + audio + "</Audio> {q} ###Assistant: "
  + "{answer}###"; every piece is tokenised without special tokens.
- ``chat``: the LLM's own chat template; the audio slot sits at the start of the first user turn;
  the answer ends with the template's end-of-turn token.
- ``plain``: stage-1 caption pretraining: [BOS] + audio + "{caption}\\n", no instruction.

The audio stays in the first turn of a multi-turn chat. A model that reads measured facts
(``ModelConfig.facts``) gets them as one line right after the audio, before the first question
(``facts`` of :meth:`PromptStyle.render`, e.g. ``Measured: 96 bpm (sure), 3/4 (unsure), ...``).
:func:`render` returns ids with
``AUDIO_SLOT`` placeholders (expanded to as many positions as the clip has audio tokens), the
audio mask and the loss mask (True only on answer tokens + end symbol of the turn being trained).
This module knows nothing about models beyond the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musilingo.errors import ConfigError

AUDIO_MARKER = "<AudioHere>"
AUDIO_SLOT = -1  # id placed where projected audio tokens go; replaced before embedding
CAPTION_INSTRUCTION = "Please give a caption to the music."


@dataclass
class Turn:
    question: str
    answer: str | None = None  # None for the turn being generated


@dataclass
class Rendered:
    """ids [L] with AUDIO_SLOT at audio positions; audio_mask / loss_mask [L] booleans."""

    ids: list[int]
    audio_mask: list[bool]
    loss_mask: list[bool]
    text: str = ""  # the prompt as a string, with AUDIO_MARKER where the audio goes (for tests/logs)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class PromptStyle:
    """Base: subclasses turn a conversation into text pieces."""

    name: str = ""
    stop_strings: list[str] = field(default_factory=list)

    def end_symbol(self, tokenizer) -> str:
        raise NotImplementedError

    def pieces(self, turns: list[Turn], tokenizer, facts: str | None = None) -> list[tuple[str, bool]]:
        """The conversation as (text, is_answer) pieces; AUDIO_MARKER appears once, followed by
        the ``facts`` line when given."""
        raise NotImplementedError

    def add_bos(self, tokenizer) -> bool:
        return tokenizer.bos_token_id is not None

    def render(self, turns: list[Turn], tokenizer, n_audio: int, train_last_only: bool = False,
               max_answer_tokens: int | None = None, facts: str | None = None) -> Rendered:
        """Tokenise a conversation; the last turn may have ``answer=None`` (to be generated).

        ``max_answer_tokens`` cuts each answer (before the end symbol), as stage 1 cuts captions
        to 32 tokens. With ``train_last_only`` only the last answer counts in the loss. ``facts``:
        the measured-facts line that follows the audio (one line; never part of the loss).
        """
        if facts is not None and (not facts.strip() or "\n" in facts or AUDIO_MARKER in facts):
            raise ValueError(f"a facts line must be one non-empty line without {AUDIO_MARKER}, got {facts!r}")
        if not turns:
            raise ValueError("a conversation needs at least one turn")
        ids: list[int] = []
        audio: list[bool] = []
        loss: list[bool] = []
        text = ""
        if self.add_bos(tokenizer):
            ids.append(tokenizer.bos_token_id)
            audio.append(False)
            loss.append(False)
        pieces = self.pieces(turns, tokenizer, facts)
        n_answers = sum(1 for _, a in pieces if a)
        seen_answers = 0
        for piece, is_answer in pieces:
            text += piece
            if is_answer:
                seen_answers += 1
                end = self.end_symbol(tokenizer)
                body = piece[: -len(end)] if end and piece.endswith(end) else piece
                toks = tokenizer.encode(body, add_special_tokens=False)
                if max_answer_tokens is not None:
                    toks = toks[:max_answer_tokens]
                toks += tokenizer.encode(end, add_special_tokens=False) if end else []
                counts = not train_last_only or seen_answers == n_answers
                ids += toks
                audio += [False] * len(toks)
                loss += [counts] * len(toks)
                continue
            parts = piece.split(AUDIO_MARKER)
            for k, part in enumerate(parts):
                if k > 0:
                    ids += [AUDIO_SLOT] * n_audio
                    audio += [True] * n_audio
                    loss += [False] * n_audio
                if part:
                    toks = tokenizer.encode(part, add_special_tokens=False)
                    ids += toks
                    audio += [False] * len(toks)
                    loss += [False] * len(toks)
        if sum(audio) != n_audio:
            raise ValueError(f"prompt has {sum(audio)} audio positions, expected {n_audio}")
        return Rendered(ids, audio, loss, text)

    def clean(self, generated: str) -> str:
        """Post-process generated text: cut at stop strings, strip."""
        for s in self.stop_strings:
            generated = generated.split(s)[0]
        return generated.strip()


@dataclass
class MusilingoStyle(PromptStyle):
    name: str = "musilingo"
    stop_strings: list[str] = field(default_factory=lambda: ["###"])

    def end_symbol(self, tokenizer) -> str:
        return "###"

    def pieces(self, turns, tokenizer, facts=None):
        out = []
        for i, t in enumerate(turns):
            # later turns follow an answer that already ends with the "###" separator
            head = f"###Human: <Audio>{AUDIO_MARKER}</Audio> " if i == 0 else "Human: "
            if i == 0 and facts:
                head += f"{facts} "
            out.append((f"{head}{t.question} ###Assistant: ", False))
            if t.answer is not None:
                out.append((t.answer + "###", True))
        return out

    def clean(self, generated: str) -> str:
        # the published post-processing: split('###')[0], then split('Assistant:')[-1]
        return generated.split("###")[0].split("Assistant:")[-1].strip()


@dataclass
class PlainStyle(PromptStyle):
    """Stage-1 caption pretraining: no instruction, caption + newline."""

    name: str = "plain"
    stop_strings: list[str] = field(default_factory=lambda: ["\n"])

    def end_symbol(self, tokenizer) -> str:
        return "\n"

    def pieces(self, turns, tokenizer, facts=None):
        if len(turns) != 1:
            raise ValueError("the plain (stage 1) style has exactly one turn")
        if facts:
            raise ConfigError("the plain (stage 1) style has no room for a facts line")
        out = [(AUDIO_MARKER, False)]
        if turns[0].answer is not None:
            out.append((turns[0].answer + "\n", True))
        return out


@dataclass
class ChatStyle(PromptStyle):
    """The tokenizer's own chat template (e.g. SmolLM2's ChatML)."""

    name: str = "chat"
    system: str | None = None  # a system message; None = the template's own default (if any)

    def end_symbol(self, tokenizer) -> str:
        """The template's end-of-turn text, read off a rendered assistant turn (e.g. <|im_end|>)."""
        sentinel = "\u2063ANSWER\u2063"
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": sentinel}], tokenize=False)
        end = full.split(sentinel, 1)[1].rstrip() if sentinel in full else ""
        return end or (tokenizer.eos_token or "")

    def add_bos(self, tokenizer) -> bool:
        return False  # the template writes its own start tokens

    def pieces(self, turns, tokenizer, facts=None):
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("the chat prompt style needs a tokenizer with a chat template")
        end = self.end_symbol(tokenizer)
        messages: list[dict] = [{"role": "system", "content": self.system}] if self.system else []
        out: list[tuple[str, bool]] = []
        prev = ""
        for i, t in enumerate(turns):
            head = f"{AUDIO_MARKER}\n{facts}\n" if facts else f"{AUDIO_MARKER}\n"
            content = head + t.question if i == 0 else t.question
            messages.append({"role": "user", "content": content})
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            if not prompt.startswith(prev):
                raise ConfigError("chat template is not prefix-stable across turns")
            out.append((prompt[len(prev):], False))
            if t.answer is None:
                break
            messages.append({"role": "assistant", "content": t.answer})
            full = tokenizer.apply_chat_template(messages, tokenize=False)
            # the answer as the template writes it, up to and including the end-of-turn token
            tail = full[len(prompt):]
            cut = tail.find(end) + len(end) if end and end in tail else len(tail)
            out.append((tail[:cut], True))
            prev = prompt + tail[:cut]
            rest = tail[cut:]
            if rest:  # e.g. the newline after <|im_end|>: part of the next prompt, not the answer
                prev_rest = rest
                out.append((prev_rest, False))
                prev += prev_rest
        return out


def get_prompt_style(name: str, tokenizer=None, system: str | None = None) -> PromptStyle:
    styles = {"musilingo": MusilingoStyle, "chat": ChatStyle, "plain": PlainStyle}
    if name not in styles:
        raise ConfigError(f"unknown prompt style {name!r}; choose one of {sorted(styles)}")
    style = ChatStyle(system=system) if name == "chat" else styles[name]()
    if name == "chat" and tokenizer is not None:
        style.stop_strings = [style.end_symbol(tokenizer)]
    return style
