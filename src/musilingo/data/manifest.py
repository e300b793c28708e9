"""The one manifest format every dataset is read into: JSONL, one clip per line.

A line is a JSON object; ``audio`` is resolved relative to the manifest's folder unless absolute::

    {"id": "bach-bwv269-0", "audio": "audio/bach-bwv269-0.wav", "duration": 12.4,
     "split": "train", "source": "music21:bach", "work_id": "bach/bwv269",
     "caption": "A slow chorale ...",
     "qa": [{"question": "What is the tempo?", "answer": "About 72 bpm, a slow tempo.",
             "kind": "tempo", "length": "short"}],
     "attributes": {"key_tonic": "G", "key_mode": "major", "tempo_bpm": 72.0, ...}}

Only ``id`` and ``audio`` are required. This module reads, validates and writes manifests; it does
not decode audio. Writes are atomic (temp file + rename) so a killed job never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from musilingo.errors import ManifestError

SPLITS = ("train", "valid", "test")


@dataclass
class QA:
    """One question/answer pair about a clip; ``kind`` names the attribute asked about."""

    question: str
    answer: str
    kind: str = "general"
    length: str = "short"  # "short" (1-2 sentences) or "long" (caption-like)


@dataclass
class Record:
    """One clip of a manifest."""

    id: str
    audio: str
    duration: float | None = None
    split: str | None = None
    source: str | None = None
    work_id: str | None = None
    caption: str | None = None
    qa: list[QA] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        d = {k: v for k, v in d.items() if v not in (None, [], {})}
        d.update(extra)
        return d

    @classmethod
    def from_json(cls, obj: dict, where: str = "") -> "Record":
        if not isinstance(obj, dict):
            raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        for key in ("id", "audio"):
            if not isinstance(obj.get(key), str) or not obj.get(key):
                raise ManifestError(f"{where}: missing or empty required field {key!r}")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        qa_raw = obj.get("qa") or []
        if not isinstance(qa_raw, list):
            raise ManifestError(f"{where}: field 'qa' must be a list")
        try:
            qa = [QA(**q) for q in qa_raw]
        except TypeError as e:
            raise ManifestError(f"{where}: malformed 'qa' entry: {e}") from None
        split = obj.get("split")
        if split is not None and split not in SPLITS:
            raise ManifestError(f"{where}: split must be one of {SPLITS}, got {split!r}")
        kwargs = {k: obj[k] for k in known if k in obj and k != "qa"}
        return cls(**kwargs, qa=qa, extra={k: v for k, v in obj.items() if k not in known})


def read_manifest(path: str | os.PathLike, resolve: bool = True) -> list[Record]:
    """Read and validate a JSONL manifest; with ``resolve`` audio paths become absolute."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    records, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{where}: not valid JSON ({e.msg})") from None
            rec = Record.from_json(obj, where)
            if rec.id in seen:
                raise ManifestError(f"{where}: duplicate id {rec.id!r}")
            seen.add(rec.id)
            if resolve and not os.path.isabs(rec.audio):
                rec.audio = str((path.parent / rec.audio).resolve())
            records.append(rec)
    if not records:
        raise ManifestError(f"{path}: manifest holds no records")
    return records


def iter_records(records: Iterable[Record], split: str | None) -> Iterator[Record]:
    return (r for r in records if split is None or r.split == split)


def check_audio_exists(records: list[Record], skip_missing: bool = False,
                       where: str = "manifest") -> tuple[list[Record], int]:
    """Find every record whose audio file is missing, up front.

    Raises one :class:`ManifestError` listing them (first 20 shown), or with ``skip_missing``
    returns the present records and the number skipped.
    """
    missing = [r for r in records if not os.path.isfile(r.audio)]
    if missing and not skip_missing:
        shown = "\n  ".join(f"{r.id}: {r.audio}" for r in missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise ManifestError(f"{where}: {len(missing)} of {len(records)} audio files are missing:"
                            f"\n  {shown}{more}\n(pass --skip-missing to skip them)")
    present = [r for r in records if os.path.isfile(r.audio)]
    return present, len(missing)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder (fsynced) and an atomic
    rename, so a reader sees the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_manifest(path: str | os.PathLike, records: Iterable[Record],
                   relative_to: str | os.PathLike | None = None) -> None:
    """Write records as JSONL atomically; audio paths are made relative to ``relative_to``."""
    lines = []
    for r in records:
        d = r.to_json()
        if relative_to is not None and os.path.isabs(d["audio"]):
            d["audio"] = os.path.relpath(d["audio"], relative_to)
        lines.append(json.dumps(d, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")


def append_jsonl(path: str | os.PathLike, obj: dict) -> None:
    """Append one JSON line and fsync: used by resumable jobs to record finished work. A last
    line torn by a kill is ended first, so the new line is never glued to it (readers skip the
    torn line and redo that work)."""
    with open(path, "a+b") as f:
        torn = False
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        f.write((("\n" if torn else "") + json.dumps(obj, ensure_ascii=False) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())
