"""Training samples: which conversations are built from each record (captions, packed Q&A,
oversampled kinds, transposed key questions) and in what order an epoch visits them.

The key augmentation (``key_transpose``) is here: a key question whose answer's tonic is renamed
by a random interval, paired with the clip's pitch features moved by the same interval when the
batch is built (:class:`musilingo.train.feature_source.FeatureSource`)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import torch

from musilingo.data.manifest import Record
from musilingo.prompts import CAPTION_INSTRUCTION, Turn
from musilingo.train.config import TrainConfig


@dataclass
class Sample:
    clip_id: str | None
    """None for a text-only sample (no audio tokens)"""
    audio: str | None
    turns: list[Turn]
    transpose: int = 0
    """semitones to move the clip's pitch features by (``key_transpose`` samples)"""
    facts: str | None = None
    """a text-only sample's tags line (audio samples read their facts from the feature cache)"""


TRANSPOSE_INTERVALS = [k for k in range(-5, 7) if k]
_MODES = r"major|minor|ionian|dorian|phrygian|lydian|mixolydian|aeolian|locrian"


def transposed_key_answer(answer: str, tonic: str, mode: str | None, semitones: int) -> str | None:
    """``answer`` with its tonic (``tonic`` followed by a mode word: "B major") renamed
    ``semitones`` higher, spelt as the corpus spells tonics (``music.transpose_tonic``); None
    unless it names the tonic exactly once (an answer that cannot be renamed safely is not used)."""
    from musilingo.music import transpose_tonic

    pattern = re.compile(rf"(?<![\w#]){re.escape(tonic)}(?=\s+(?:{_MODES})\b)")
    if len(pattern.findall(answer)) != 1:
        return None
    return pattern.sub(transpose_tonic(tonic, (mode or "").lower(), semitones), answer)


def build_samples(records: list[Record], cfg: TrainConfig, oversample: bool = True) -> list[Sample]:
    """One sample per caption, and one per ``cfg.qa_per_sample`` Q&A pairs, of each record (as
    ``cfg.tasks`` says), plus ``cfg.qa_oversample`` single-turn repeats of the Q&A kinds it names
    (unless ``oversample`` is false). The caption stays a conversation of its own: packed after
    Q&A answers it could be copied from them instead of heard."""
    out = []
    k = cfg.qa_per_sample
    for r in records:
        if "caption" in cfg.tasks and r.caption:
            q = "" if cfg.stage == 1 else CAPTION_INSTRUCTION
            out.append(Sample(r.id, r.audio, [Turn(q, r.caption)]))
        if "qa" in cfg.tasks and cfg.stage == 2:
            turns = [Turn(qa.question, qa.answer) for qa in r.qa]
            if k > 1:
                random.Random(f"{cfg.seed}:{r.id}").shuffle(turns)
            out += [Sample(r.id, r.audio, turns[i: i + k]) for i in range(0, len(turns), k)]
            if oversample:
                out += [Sample(r.id, r.audio, [Turn(qa.question, qa.answer)])
                        for qa in r.qa for _ in range(cfg.qa_oversample.get(qa.kind, 0))]
            if oversample and cfg.key_transpose and r.attributes.get("key_tonic"):
                rng = random.Random(f"{cfg.seed}:{r.id}:transpose")
                for qa in r.qa:
                    if qa.kind != "key":
                        continue
                    for _ in range(cfg.key_transpose):
                        k = rng.choice(TRANSPOSE_INTERVALS)
                        answer = transposed_key_answer(qa.answer, str(r.attributes["key_tonic"]),
                                                       r.attributes.get("key_mode"), k)
                        if answer is not None:
                            out.append(Sample(r.id, r.audio, [Turn(qa.question, answer)], transpose=k))
    return out


def text_only_samples(cfg: TrainConfig) -> list[Sample]:
    """The MusicCaps text-only samples of ``cfg.musiccaps_text`` (train rows only), each caption
    its own conversation and the Q&A packed ``cfg.qa_per_sample`` per sample, repeated
    ``cfg.musiccaps_text_repeat`` times; at most ``cfg.musiccaps_text_limit`` of them (seeded)."""
    if not cfg.musiccaps_text or not cfg.musiccaps_text_repeat:
        return []
    from musilingo.data.musiccaps_text import text_samples

    out = []
    for ts in text_samples(cfg.musiccaps_text, split="train", seed=cfg.seed):
        caption = [t for t in ts.turns if t.question == CAPTION_INSTRUCTION]
        qa = [t for t in ts.turns if t.question != CAPTION_INSTRUCTION]
        convs = [caption] if caption else []
        convs += [qa[i: i + cfg.qa_per_sample] for i in range(0, len(qa), cfg.qa_per_sample)]
        out += [Sample(None, None, conv, facts=ts.tags_line) for conv in convs if conv]
    if cfg.musiccaps_text_limit is not None and cfg.musiccaps_text_limit < len(out):
        out = random.Random(f"{cfg.seed}:musiccaps-text").sample(out, cfg.musiccaps_text_limit)
    return out * cfg.musiccaps_text_repeat


def epoch_order(n: int, seed: int, epoch: int, lengths: list[int] | None = None,
                batch: int = 1) -> list[int]:
    """The sample order of one epoch: a permutation fixed by (seed, epoch).

    With ``lengths`` (``group_by_length``), consecutive runs of ``batch`` samples have similar
    lengths, so right padding wastes little compute: the permutation is cut into chunks of 32
    batches, each chunk sorted by length and cut into batches, and the full batches shuffled
    (the idea of transformers' ``LengthGroupedSampler``, which works on a DataLoader; this loop
    slices one list so that resume stays exact). A partial batch goes last.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    if lengths is None or batch <= 1:
        return perm
    full, rest = [], []
    for c in range(0, n, batch * 32):
        part = sorted(perm[c: c + batch * 32], key=lambda i: -lengths[i])
        for b in range(0, len(part), batch):
            (full if len(part) - b >= batch else rest).append(part[b: b + batch])
    shuffled = [full[j] for j in torch.randperm(len(full), generator=g).tolist()]
    return [i for b in shuffled + rest for i in b]


def sample_length(s: Sample) -> int:
    """A cheap proxy for a sample's token count (characters of its turns) for length grouping."""
    return sum(len(t.question or "") + len(t.answer or "") + 40 for t in s.turns)
