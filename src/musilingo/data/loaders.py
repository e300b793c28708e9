"""Loaders that read the public MusiLingo datasets into manifest :class:`Record` objects.

Formats, as the published datasets ship them:

- **MusicCaps** CSV (``ytid, start_s, end_s, audioset_positive_labels, aspect_list, caption,
  author_id, is_balanced_subset, is_audioset_eval``): one Record per row, id = ytid, caption from
  ``caption``, split ``test`` when ``is_audioset_eval`` is True else ``train``; the aspect list,
  AudioSet labels, author and clip span are kept in ``extra``.
- **MusicInstruct** JSON (``{"QA": [{"ytid", "sampling_rate", "is_audioset_eval", "question",
  "answer", ...}]}``): the Q&A of one ytid are grouped into one Record; split by
  ``is_audioset_eval``. Short vs long: see :func:`infer_length`.
- **MusicQA** JSON (list of ``{"audio_name", "conversation": [{"from": "human"|"gpt",
  "value"}]}``): entries of one ``audio_name`` are grouped into one Record, each human turn
  followed by a gpt turn is one Q&A.
- **LP-MusicCaps-MSD** (JSON list, JSONL or CSV of ``track_id, title, artist_name, release, year,
  tag, caption_writing, caption_summary, caption_paraphrase, caption_attribute_prediction,
  path``): one Record per track, caption from a selectable field (default ``caption_writing``).
- an existing musilingo **manifest** JSONL (passed through :func:`read_manifest`).

Audio: a clip named ``stem`` is looked up in ``audio_dir`` (default: the dataset file's folder)
as ``stem.wav``, then ``stem.npy``, then any other extension in
:data:`musilingo.audio.AUDIO_EXTENSIONS`; the folder is listed once, not probed per clip. A
``.npy`` clip is a float32 array of raw samples with no header, so its rate is an assumption:
:data:`NPY_SAMPLE_RATE` unless told otherwise (``npy_sample_rate``, or a MusicInstruct entry's
``sampling_rate``); it is stored on the Record as ``extra["npy_sample_rate"]`` and
:func:`load_npy_audio` reads it. Missing audio is found up front by :func:`load_dataset` and
reported in one :class:`ManifestError` (or skipped and counted with ``skip_missing``).

This module parses and validates; it does not decode audio files other than ``.npy``, does not
download anything and does not render prompts.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np

from musilingo.audio import AUDIO_EXTENSIONS, resample
from musilingo.data.manifest import QA, Record, check_audio_exists, read_manifest, write_manifest
from musilingo.errors import AudioError, ConfigError, ManifestError

FORMATS = ("musiccaps", "musicinstruct", "musicqa", "lpmusiccaps", "manifest")

# Rate assumed for bare ``.npy`` clips (float32 samples, no header). MusicCaps audio as fetched
# from YouTube is 48 kHz and MusicInstruct entries say ``sampling_rate`` per clip; when neither the
# caller nor the entry says otherwise this default is used. UNCONFIRMED for third-party dumps:
# pass ``npy_sample_rate`` when yours differ.
NPY_SAMPLE_RATE = 48_000

LP_CAPTION_FIELDS = ("caption_writing", "caption_summary", "caption_paraphrase",
                     "caption_attribute_prediction")

# Short/long rule when a file does not say: the paper's short answers are 1-2 sentences about one
# aspect, long answers paraphrase a whole caption (MusicCaps captions: ~50 words, 3-136). An
# answer with at most SHORT_MAX_SENTENCES sentences and at most SHORT_MAX_WORDS words is short.
SHORT_MAX_WORDS = 40
SHORT_MAX_SENTENCES = 2

MUSICCAPS_COLUMNS = ("ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list",
                     "caption", "author_id", "is_balanced_subset", "is_audioset_eval")

# The audio extensions tried for a clip stem, in order of preference.
_EXT_ORDER = (".wav", ".npy") + tuple(e for e in AUDIO_EXTENSIONS if e != ".wav")
_HUMAN_ROLES = ("human", "user")
_GPT_ROLES = ("gpt", "assistant")


class SkippedAudioWarning(UserWarning):
    """Records were dropped because their audio is missing (``skip_missing``)."""


# ---------------------------------------------------------------------------------------------
# small helpers


def infer_length(answer: str) -> str:
    """Classify an answer as ``"short"`` or ``"long"`` from its size (see SHORT_MAX_* above)."""
    words = len(answer.split())
    sentences = len([s for s in re.split(r"[.!?]+(?:\s|$)", answer.strip()) if s.strip()])
    return "short" if words <= SHORT_MAX_WORDS and sentences <= SHORT_MAX_SENTENCES else "long"


def _normalise_length(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lower() in ("short", "long"):
        return value.strip().lower()
    return None


def _parse_bool(value: Any, where: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    raise ManifestError(f"{where}: field {name!r} must be True or False, got {value!r}")


def _parse_float(value: Any, where: str, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: field {name!r} must be a number, got {value!r}") from None


def _parse_list(value: Any, where: str, name: str) -> list:
    """A list given as a JSON/Python list, its string form ``"['a', 'b']"`` or ``"a,b"``."""
    if isinstance(value, list):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ManifestError(f"{where}: field {name!r} is not a valid list: "
                                    f"{text[:80]!r}") from None
            if isinstance(parsed, (list, tuple)):
                return list(parsed)
        return [s.strip() for s in text.split(",") if s.strip()]
    raise ManifestError(f"{where}: field {name!r} must be a list, got {type(value).__name__}")


def _name_words(path: Path) -> set[str]:
    """Lower-case words of a file name: ``MusicQA_EvalData`` -> {music, qa, eval, data}."""
    return set(re.split(r"[^a-z]+", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", path.stem).lower()))


def _split_from_name(path: Path) -> str:
    """Guess a split from a file name: *eval*/*test* -> test, *valid*/*val* -> valid, else train."""
    tokens = _name_words(path)
    if tokens & {"eval", "test", "evaluation"}:
        return "test"
    if tokens & {"valid", "val", "validation", "dev"}:
        return "valid"
    return "train"


def _normalise_split(value: Any, where: str) -> str:
    s = str(value).strip().lower()
    s = {"val": "valid", "validation": "valid", "dev": "valid", "eval": "test"}.get(s, s)
    if s not in ("train", "valid", "test"):
        raise ManifestError(f"{where}: unknown split {value!r} (expected train, valid or test)")
    return s


class _AudioIndex:
    """Find ``stem.<ext>`` in one folder with a single directory listing."""

    def __init__(self, audio_dir: Path, npy_sample_rate: int):
        self.dir = audio_dir
        self.npy_sample_rate = npy_sample_rate
        self.files: dict[str, dict[str, str]] = {}
        if audio_dir.is_dir():
            for name in os.listdir(audio_dir):
                stem, ext = os.path.splitext(name)
                self.files.setdefault(stem, {})[ext.lower()] = name

    def find(self, stem: str) -> str:
        """Absolute path of the clip ``stem``; ``stem.wav`` (reported missing later) if none."""
        found = self.files.get(stem, {})
        for ext in _EXT_ORDER:
            if ext in found:
                return str((self.dir / found[ext]).resolve())
        return str((self.dir / f"{stem}.wav").resolve())

    def find_path(self, rel: str) -> str:
        """A clip given by a relative path (``3/0/4/TRAA...mp3``): as given, else another ext."""
        p = Path(rel)
        full = p if p.is_absolute() else self.dir / p
        if full.is_file():
            return str(full.resolve())
        for ext in _EXT_ORDER:
            alt = full.with_suffix(ext)
            if alt.is_file():
                return str(alt.resolve())
        return str(full.resolve())

    def note_rate(self, rec: Record, rate: int | None = None) -> Record:
        if rec.audio.lower().endswith(".npy"):
            rec.extra["npy_sample_rate"] = int(rate or self.npy_sample_rate)
        return rec


def _audio_index(path: Path, audio_dir: str | os.PathLike | None, npy_sample_rate: int
                 ) -> _AudioIndex:
    folder = Path(audio_dir) if audio_dir is not None else path.parent
    if audio_dir is not None and not folder.is_dir():
        raise ManifestError(f"{folder}: audio folder not found")
    return _AudioIndex(folder, npy_sample_rate)


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"{p}: dataset file not found")
    return p


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: "
                            f"{e.msg})") from None
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text ({e.reason})") from None


def _read_jsonl(path: Path) -> list[tuple[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    return rows


def _read_csv(path: Path, required: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise ManifestError(f"{path}: CSV header lacks column(s) {', '.join(missing)} "
                                    f"(found: {', '.join(header) or 'no header'})")
            rows = []
            start = 2
            for row in reader:
                if None in row:
                    raise ManifestError(f"{path}:{start}: row has more fields than the header")
                if any(v is None for v in row.values()):
                    raise ManifestError(f"{path}:{start}: row has fewer fields than the header")
                rows.append((f"{path}:{start}", row))
                start = reader.line_num + 1
            return rows
    except csv.Error as e:
        raise ManifestError(f"{path}: malformed CSV ({e})") from None
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text ({e.reason})") from None


def _rows_of(path: Path) -> list[tuple[str, Any]]:
    """Rows of a JSON list / JSONL file, each with its location for error messages."""
    if path.suffix.lower() == ".jsonl" or _first_char(path) == "{" and _looks_jsonl(path):
        return _read_jsonl(path)
    data = _read_json(path)
    if isinstance(data, dict):
        lists = [(k, v) for k, v in data.items() if isinstance(v, list)]
        if len(lists) == 1:  # {"data": [...]} / {"train": [...]}
            key, data = lists[0]
            return [(f"{path}: entry {key}[{i}]", row) for i, row in enumerate(data)]
    if not isinstance(data, list):
        raise ManifestError(f"{path}: expected a JSON list of entries, got "
                            f"{type(data).__name__}")
    return [(f"{path}: entry [{i}]", row) for i, row in enumerate(data)]


def _first_char(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return ""
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0]


def _looks_jsonl(path: Path) -> bool:
    """True when the first non-empty line is a complete JSON object on its own."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    return isinstance(json.loads(line), dict)
                except json.JSONDecodeError:
                    return False
    return False


def _require_str(obj: dict, key: str, where: str, allow_empty: bool = False) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        got = "missing" if key not in obj else f"a {type(value).__name__}"
        raise ManifestError(f"{where}: field {key!r} must be a string ({got})")
    if not allow_empty and not value.strip():
        raise ManifestError(f"{where}: field {key!r} is empty")
    return value


def _require_dict(obj: Any, where: str) -> dict:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _warn_dropped(path: Path, n: int, what: str) -> None:
    if n:
        warnings.warn(f"{path}: dropped {n} {what}", UserWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# one loader per format


def load_musiccaps(path: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                   npy_sample_rate: int = NPY_SAMPLE_RATE) -> list[Record]:
    """Read the MusicCaps CSV: one Record per clip (id = ytid); audio is not checked here.

    ``split`` is ``test`` when ``is_audioset_eval`` is True, else ``train``; ``duration`` is
    ``end_s - start_s``. ``extra`` keeps ``ytid, start_s, end_s, aspect_list`` (a list),
    ``audioset_positive_labels`` (a list), ``author_id`` and ``is_balanced_subset``.
    """
    path = _check_file(path)
    index = _audio_index(path, audio_dir, npy_sample_rate)
    records: list[Record] = []
    seen: dict[str, str] = {}
    for where, row in _read_csv(path, MUSICCAPS_COLUMNS):
        ytid = row["ytid"].strip()
        if not ytid:
            raise ManifestError(f"{where}: empty 'ytid'")
        if ytid in seen:
            raise ManifestError(f"{where}: duplicate ytid {ytid!r} (first at {seen[ytid]})")
        seen[ytid] = where
        caption = row["caption"].strip()
        if not caption:
            raise ManifestError(f"{where}: empty 'caption' for {ytid!r}")
        start = _parse_float(row["start_s"], where, "start_s")
        end = _parse_float(row["end_s"], where, "end_s")
        if end <= start:
            raise ManifestError(f"{where}: end_s ({end:g}) must be after start_s ({start:g})")
        is_eval = _parse_bool(row["is_audioset_eval"], where, "is_audioset_eval")
        author = row["author_id"].strip()
        rec = Record(
            id=ytid, audio=index.find(ytid), duration=end - start,
            split="test" if is_eval else "train", source="musiccaps", caption=caption,
            extra={
                "ytid": ytid, "start_s": start, "end_s": end,
                "aspect_list": _parse_list(row["aspect_list"], where, "aspect_list"),
                "audioset_positive_labels": _parse_list(row["audioset_positive_labels"], where,
                                                        "audioset_positive_labels"),
                "author_id": int(author) if author.isdigit() else author,
                "is_balanced_subset": _parse_bool(row["is_balanced_subset"], where,
                                                  "is_balanced_subset"),
            })
        records.append(index.note_rate(rec))
    if not records:
        raise ManifestError(f"{path}: the CSV holds no rows")
    return records


def load_musicinstruct(path: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                       npy_sample_rate: int = NPY_SAMPLE_RATE, length: str | None = None,
                       subset: str = "all") -> list[Record]:
    """Read MusicInstruct JSON: the Q&A of each ytid grouped into one Record (id = ytid).

    Short vs long, first rule that applies: ``length`` given here; the entry's ``length`` /
    ``type`` / ``qa_type`` field when it says "short" or "long"; the same keys at the top level
    of the file; the file name holding the word ``short`` or ``long``; else :func:`infer_length`
    on the answer. ``subset`` ("all", "short", "long") keeps only those Q&A (the paper trains on
    each). Entries with an empty question or answer are dropped with a warning. The split is
    ``test`` when ``is_audioset_eval`` is True. ``sampling_rate`` (per clip) sets the assumed
    rate of ``.npy`` audio.
    """
    path = _check_file(path)
    if subset not in ("all", "short", "long"):
        raise ConfigError(f"subset must be 'all', 'short' or 'long', got {subset!r}")
    if length is not None and _normalise_length(length) is None:
        raise ConfigError(f"length must be 'short' or 'long', got {length!r}")
    data = _read_json(path)
    return _from_musicinstruct(path, data, audio_dir, npy_sample_rate, length, subset)


def _from_musicinstruct(path: Path, data: Any, audio_dir, npy_sample_rate: int,
                        length: str | None, subset: str) -> list[Record]:
    if not isinstance(data, dict) or not isinstance(data.get("QA"), list):
        raise ManifestError(f"{path}: expected a JSON object with a list under 'QA'")
    file_length = _normalise_length(length)
    if file_length is None:
        for key in ("length", "type", "qa_type"):
            file_length = file_length or _normalise_length(data.get(key))
    if file_length is None:
        tokens = _name_words(path)
        if ("short" in tokens) != ("long" in tokens):
            file_length = "short" if "short" in tokens else "long"
    index = _audio_index(path, audio_dir, npy_sample_rate)
    groups: dict[str, Record] = {}
    dropped = 0
    for i, entry in enumerate(data["QA"]):
        where = f"{path}: entry QA[{i}]"
        entry = _require_dict(entry, where)
        ytid = _require_str(entry, "ytid", where).strip()
        question = _require_str(entry, "question", where, allow_empty=True).strip()
        answer = _require_str(entry, "answer", where, allow_empty=True).strip()
        if "is_audioset_eval" not in entry:
            raise ManifestError(f"{where}: missing field 'is_audioset_eval'")
        split = "test" if _parse_bool(entry["is_audioset_eval"], where,
                                      "is_audioset_eval") else "train"
        rate = entry.get("sampling_rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                                 or rate <= 0):
            raise ManifestError(f"{where}: 'sampling_rate' must be a positive number, "
                                f"got {rate!r}")
        rec = groups.get(ytid)
        if rec is None:
            rec = Record(id=ytid, audio=index.find(ytid), split=split, source="musicinstruct",
                         extra={"ytid": ytid})
            if rate is not None:
                rec.extra["sampling_rate"] = int(rate)
            index.note_rate(rec, int(rate) if rate else None)
            groups[ytid] = rec
        elif rec.split != split:
            raise ManifestError(f"{where}: is_audioset_eval of {ytid!r} disagrees with an "
                                f"earlier entry of the same clip")
        if not question or not answer:
            dropped += 1
            continue
        kind_len = file_length
        if kind_len is None:
            for key in ("length", "type", "qa_type"):
                kind_len = kind_len or _normalise_length(entry.get(key))
        kind_len = kind_len or infer_length(answer)
        if subset != "all" and kind_len != subset:
            continue
        kind = entry.get("kind") if isinstance(entry.get("kind"), str) else "general"
        rec.qa.append(QA(question=question, answer=answer, kind=kind, length=kind_len))
    _warn_dropped(path, dropped, "Q&A entries with an empty question or answer")
    records = [r for r in groups.values() if r.qa]
    if not records:
        raise ManifestError(f"{path}: no Q&A entries" + (f" of length {subset!r}"
                                                          if subset != "all" else ""))
    return records


def load_musicqa(path: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                 npy_sample_rate: int = NPY_SAMPLE_RATE, split: str | None = None
                 ) -> list[Record]:
    """Read MusicQA JSON (list or JSONL of ``{"audio_name", "conversation"}``).

    Entries of one ``audio_name`` are grouped into one Record (id = its stem); every human turn
    followed by a gpt turn is one Q&A, its length from :func:`infer_length`. The audio is
    ``audio_dir/audio_name`` (or the same stem with another extension). ``split`` defaults to a
    guess from the file name (``*eval*``/``*test*`` -> test, ``*val*`` -> valid, else train).
    """
    path = _check_file(path)
    return _from_musicqa(path, _rows_of(path), audio_dir, npy_sample_rate, split)


def _from_musicqa(path: Path, rows: list[tuple[str, Any]], audio_dir, npy_sample_rate: int,
                  split: str | None) -> list[Record]:
    split = _normalise_split(split, str(path)) if split else _split_from_name(path)
    index = _audio_index(path, audio_dir, npy_sample_rate)
    groups: dict[str, Record] = {}
    for where, entry in rows:
        entry = _require_dict(entry, where)
        name = _require_str(entry, "audio_name", where).strip()
        conv = entry.get("conversation")
        if not isinstance(conv, list) or not conv:
            raise ManifestError(f"{where}: 'conversation' must be a non-empty list of turns")
        stem = os.path.splitext(os.path.basename(name))[0]
        rec = groups.get(name)
        if rec is None:
            if any(r.id == stem for r in groups.values()):
                raise ManifestError(f"{where}: audio_name {name!r} has the same id {stem!r} "
                                    f"as another clip")
            rec = Record(id=stem, audio=index.find_path(name), split=split, source="musicqa",
                         extra={"audio_name": name})
            groups[name] = index.note_rate(rec)
        question: str | None = None
        for t, turn in enumerate(conv):
            twhere = f"{where} turn {t}"
            turn = _require_dict(turn, twhere)
            role = _require_str(turn, "from", twhere).strip().lower()
            value = _require_str(turn, "value", twhere, allow_empty=True).strip()
            if role in _HUMAN_ROLES:
                if question is not None:
                    raise ManifestError(f"{twhere}: two human turns in a row (no answer to "
                                        f"{question[:60]!r})")
                question = value
            elif role in _GPT_ROLES:
                if question is None:
                    raise ManifestError(f"{twhere}: a gpt turn with no human question before it")
                if not question or not value:
                    raise ManifestError(f"{twhere}: empty question or answer")
                rec.qa.append(QA(question=question, answer=value, length=infer_length(value)))
                question = None
            else:
                raise ManifestError(f"{twhere}: unknown speaker {role!r} "
                                    f"(expected human or gpt)")
        if question is not None:
            raise ManifestError(f"{where}: the last human turn has no gpt answer")
    if not groups:
        raise ManifestError(f"{path}: no entries")
    return list(groups.values())


def load_lpmusiccaps(path: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                     caption_field: str = "caption_writing",
                     npy_sample_rate: int = NPY_SAMPLE_RATE, split: str | None = None
                     ) -> list[Record]:
    """Read LP-MusicCaps-MSD (JSON list, JSONL or CSV): one Record per ``track_id``.

    ``caption`` comes from ``caption_field`` (one of :data:`LP_CAPTION_FIELDS`; the paper's stage
    1 used ``caption_writing``). Audio is ``audio_dir/path`` (or the same path with ``.npy`` /
    another audio extension). The split comes from a row's ``split`` field, else ``split``, else
    the file name (see :func:`load_musicqa`). Everything else is kept in ``extra``, ``tag`` as
    a list.
    """
    path = _check_file(path)
    if caption_field not in LP_CAPTION_FIELDS:
        raise ConfigError(f"caption_field must be one of {', '.join(LP_CAPTION_FIELDS)}, "
                          f"got {caption_field!r}")
    if path.suffix.lower() == ".csv":
        rows: list[tuple[str, Any]] = _read_csv(path, ("track_id", "path", caption_field))
    else:
        rows = _rows_of(path)
    return _from_lpmusiccaps(path, rows, audio_dir, caption_field, npy_sample_rate, split)


def _from_lpmusiccaps(path: Path, rows: list[tuple[str, Any]], audio_dir, caption_field: str,
                      npy_sample_rate: int, split: str | None) -> list[Record]:
    default_split = _normalise_split(split, str(path)) if split else _split_from_name(path)
    index = _audio_index(path, audio_dir, npy_sample_rate)
    records, seen = [], {}
    for where, row in rows:
        row = _require_dict(row, where)
        track = _require_str(row, "track_id", where).strip()
        if track in seen:
            raise ManifestError(f"{where}: duplicate track_id {track!r} (first at {seen[track]})")
        seen[track] = where
        rel = _require_str(row, "path", where).strip()
        caption = _require_str(row, caption_field, where).strip()
        extra = {k: v for k, v in row.items() if k not in ("track_id", "path", caption_field,
                                                           "split")}
        extra["track_id"] = track
        extra["path"] = rel
        if "tag" in extra:
            extra["tag"] = _parse_list(extra["tag"], where, "tag")
        row_split = row.get("split")
        rec = Record(id=track, audio=index.find_path(rel),
                     split=_normalise_split(row_split, where) if row_split else default_split,
                     source="lp-musiccaps-msd", caption=caption, extra=extra)
        records.append(index.note_rate(rec))
    if not records:
        raise ManifestError(f"{path}: no entries")
    return records


# ---------------------------------------------------------------------------------------------
# auto-detection and the single entry point


def detect_format(path: str | os.PathLike) -> str:
    """Name the format of a dataset file from its contents (see :data:`FORMATS`)."""
    path = _check_file(path)
    fmt, _ = _detect(path)
    return fmt


def _detect(path: Path) -> tuple[str, Any]:
    """(format, parsed JSON data or None) so a JSON file is parsed only once."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            header = next(csv.reader(f), [])
        cols = set(h.strip() for h in header)
        if {"ytid", "caption", "is_audioset_eval"} <= cols:
            return "musiccaps", None
        if "track_id" in cols and cols & set(LP_CAPTION_FIELDS):
            return "lpmusiccaps", None
        raise ManifestError(f"{path}: cannot tell the dataset format from the CSV header "
                            f"({', '.join(header[:12]) or 'empty'}); pass format=")
    if suffix == ".jsonl" or (_first_char(path) == "{" and _looks_jsonl(path)):
        rows = _read_jsonl(path)
        if not rows:
            raise ManifestError(f"{path}: empty file")
        first = rows[0][1]
        if isinstance(first, dict):
            if len(rows) == 1 and "QA" in first:  # MusicInstruct written on one line
                return "musicinstruct", first
            if "id" in first and "audio" in first:
                return "manifest", None
            if "track_id" in first:
                return "lpmusiccaps", rows
            if "audio_name" in first and "conversation" in first:
                return "musicqa", rows
        raise ManifestError(f"{rows[0][0]}: cannot tell the dataset format from the first "
                            f"line; pass format=")
    data = _read_json(path)
    if isinstance(data, dict) and "QA" in data:
        return "musicinstruct", data
    entries, prefix = data, "entry "
    if isinstance(data, dict):
        lists = [(k, v) for k, v in data.items() if isinstance(v, list)]
        entries, prefix = (lists[0][1], f"entry {lists[0][0]}") if len(lists) == 1 else (None, "")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        rows = [(f"{path}: {prefix}[{i}]", row) for i, row in enumerate(entries)]
        if "audio_name" in entries[0] and "conversation" in entries[0]:
            return "musicqa", rows
        if "track_id" in entries[0]:
            return "lpmusiccaps", rows
    raise ManifestError(f"{path}: cannot tell the dataset format (expected MusicInstruct "
                        f"{{'QA': [...]}}, a MusicQA list or LP-MusicCaps rows); pass format=")


def load_dataset(path: str | os.PathLike, format: str = "auto",
                 audio_dir: str | os.PathLike | None = None, skip_missing: bool = False,
                 check_audio: bool = True, caption_field: str = "caption_writing",
                 npy_sample_rate: int = NPY_SAMPLE_RATE, split: str | None = None,
                 subset: str = "all") -> list[Record]:
    """Read any supported dataset file into Records, and check its audio up front.

    ``format`` is ``"auto"`` (see :func:`detect_format`) or one of :data:`FORMATS`.
    ``audio_dir`` is where clips are looked up (default: the file's folder). With
    ``check_audio`` every missing clip is listed in one :class:`ManifestError`, or, with
    ``skip_missing``, dropped and counted in a :class:`SkippedAudioWarning`. Pass
    ``check_audio=False`` to read captions/Q&A only (e.g. MusicCaps, whose audio is on YouTube).
    ``caption_field`` is for LP-MusicCaps, ``split`` for MusicQA / LP-MusicCaps, ``subset``
    ("all" | "short" | "long") for MusicInstruct.
    """
    path = _check_file(path)
    if format == "auto":
        fmt, data = _detect(path)
    elif format in FORMATS:
        fmt, data = format, None
    else:
        raise ConfigError(f"unknown dataset format {format!r}; expected auto or one of "
                          f"{', '.join(FORMATS)}")
    if fmt == "musiccaps":
        records = load_musiccaps(path, audio_dir, npy_sample_rate)
    elif fmt == "musicinstruct":
        if data is None:
            records = load_musicinstruct(path, audio_dir, npy_sample_rate, subset=subset)
        else:
            if subset not in ("all", "short", "long"):
                raise ConfigError(f"subset must be 'all', 'short' or 'long', got {subset!r}")
            records = _from_musicinstruct(path, data, audio_dir, npy_sample_rate, None, subset)
    elif fmt == "musicqa":
        rows = data if isinstance(data, list) else _rows_of(path)
        records = _from_musicqa(path, rows, audio_dir, npy_sample_rate, split)
    elif fmt == "lpmusiccaps":
        if isinstance(data, list):
            if caption_field not in LP_CAPTION_FIELDS:
                raise ConfigError(f"caption_field must be one of {', '.join(LP_CAPTION_FIELDS)}"
                                  f", got {caption_field!r}")
            records = _from_lpmusiccaps(path, data, audio_dir, caption_field, npy_sample_rate,
                                        split)
        else:
            records = load_lpmusiccaps(path, audio_dir, caption_field, npy_sample_rate, split)
    else:
        if audio_dir is not None:
            raise ConfigError("audio_dir does not apply to a manifest (its paths are relative to "
                              "the manifest's folder)")
        records = read_manifest(path)
    if check_audio:
        records, skipped = check_audio_exists(records, skip_missing, where=str(path))
        if skipped:
            warnings.warn(f"{path}: skipped {skipped} of {skipped + len(records)} records whose "
                          f"audio is missing", SkippedAudioWarning, stacklevel=2)
        if not records:
            raise ManifestError(f"{path}: no records left: all {skipped} audio files are missing")
    return records


def load_npy_audio(path: str | os.PathLike, sample_rate: int = NPY_SAMPLE_RATE,
                   target_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a ``.npy`` clip of raw samples as mono float32.

    The array is ``[S]``, or ``[C, S]`` / ``[S, C]`` with C <= 8 channels (averaged to mono); its
    rate is ``sample_rate`` (the file does not say; see :data:`NPY_SAMPLE_RATE`). Returns
    ``(samples [S], rate)``, resampled to ``target_rate`` when given. Raises :class:`AudioError`
    for an unreadable, empty, non-numeric or non-finite array.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise AudioError(path, "no such file") from None
    except (ValueError, OSError, EOFError) as e:
        raise AudioError(path, f"not a readable .npy array ({e})") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise AudioError(path, f"array of {arr.dtype} is not audio samples")
    if arr.ndim == 2 and arr.shape[0] <= 8 and arr.shape[0] < arr.shape[1]:
        arr = arr.mean(axis=0)  # [C, S]
    elif arr.ndim == 2 and arr.shape[1] <= 8:
        arr = arr.mean(axis=1)  # [S, C]
    if arr.ndim != 1:
        raise AudioError(path, f"expected a [samples] or [channels, samples] array, got shape "
                         f"{tuple(arr.shape)}")
    if arr.size == 0:
        raise AudioError(path, "zero-length audio (no samples)")
    if np.issubdtype(arr.dtype, np.integer):  # int16 PCM dumps
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    samples = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise AudioError(path, "contains NaN or infinite samples")
    if target_rate is not None and target_rate != sample_rate:
        return resample(samples, sample_rate, target_rate), target_rate
    return samples, sample_rate


def summarise(records: list[Record]) -> str:
    """One line: record count, per-split counts, Q&A count and captions."""
    splits = Counter(r.split or "none" for r in records)
    n_qa = sum(len(r.qa) for r in records)
    n_cap = sum(1 for r in records if r.caption)
    parts = ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
    return f"{len(records)} records ({parts}); {n_cap} captions; {n_qa} Q&A"


def convert_command(inp: str, out: str,
                    format: Literal["auto", "musiccaps", "musicinstruct", "musicqa", "lpmusiccaps",
                                    "manifest"] = "auto",
                    audio_dir: str | None = None, skip_missing: bool = False,
                    check_audio: bool = True, caption_field: str = "caption_writing",
                    subset: Literal["all", "short", "long"] = "all",
                    npy_sample_rate: int = NPY_SAMPLE_RATE, as_json: bool = False) -> int:
    """Convert a public dataset file (MusicCaps CSV, MusicInstruct, MusicQA, LP-MusicCaps) to a
    musilingo manifest JSONL.

    Args:
        inp: the dataset file.
        out: the manifest to write (atomically); audio paths are written relative to its folder.
        format: auto, musiccaps, musicinstruct, musicqa, lpmusiccaps or manifest.
        audio_dir: folder holding the clips (``{ytid}.wav`` / ``.npy``, MusicQA ``audio_name``,
            LP-MusicCaps ``path``); default: the input file's folder.
        skip_missing: drop clips whose audio is missing (counted) instead of failing.
        check_audio: check that every clip's audio exists (turn off for text-only use).
        caption_field: LP-MusicCaps caption to use (default caption_writing, as the paper).
        subset: MusicInstruct Q&A to keep: all, short or long.
        npy_sample_rate: sample rate assumed for .npy clips (stored per record).
        as_json: print {"manifest", "records", "splits", "captions", "qa"} instead of a sentence.
    """
    if npy_sample_rate < 1:
        raise ConfigError(f"--npy-sample-rate must be a positive number of Hz, got {npy_sample_rate}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = load_dataset(inp, format, audio_dir, skip_missing, check_audio, caption_field,
                               npy_sample_rate, subset=subset)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    out_path = Path(out)
    write_manifest(out_path, records, relative_to=out_path.parent.resolve())
    if as_json:
        print(json.dumps({"manifest": str(out_path), "records": len(records),
                          "splits": dict(Counter(r.split or "none" for r in records)),
                          "captions": sum(1 for r in records if r.caption),
                          "qa": sum(len(r.qa) for r in records)}))
    else:
        print(f"wrote {out_path}: {summarise(records)}")
    return 0
