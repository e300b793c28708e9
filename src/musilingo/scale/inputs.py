"""Inputs of a scaled job: folders, manifests, list files and single files, local paths or URIs
that pyarrow's filesystems read (``file://``, ``s3://``, ``gs://``, ``hdfs://`` where the user has
the credentials and pyarrow was built with them).

- a folder (or a URI prefix that is a directory): every audio file below it, by extension, sorted;
- ``*.jsonl``: a manifest (``musilingo.data.manifest``); relative audio paths are resolved
  against the manifest's folder;
- ``*.txt`` / ``*.lst``: one path or URI per line (blank lines and ``#`` comments skipped);
- anything else: one audio file. A missing one is not an error here: it is reported per file.

:func:`read_audio` decodes one source on a worker exactly as the plain path does (local files
through ``audio.load_audio``; remote bytes through ``audio.decode_bytes``). Imports pyarrow only
when a URI is read.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import numpy as np

from musilingo.audio import (
    AUDIO_EXTENSIONS,
    MAX_DURATION_S,
    decode_bytes,
    find_audio_files,
    load_audio,
)
from musilingo.errors import MusiLingoError

LIST_SUFFIXES = (".txt", ".lst")


def is_uri(s: str) -> bool:
    """``scheme://...`` (``file://`` included); Windows drive letters are not schemes."""
    head, sep, _ = s.partition("://")
    return bool(sep) and len(head) > 1 and head.replace("+", "").isalnum()


def _filesystem(uri: str):
    """(pyarrow FileSystem, path inside it) of a URI."""
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)


def _join(base_uri: str, rel: str) -> str:
    """``rel`` resolved against the folder of ``base_uri`` (a URI), unless it is absolute."""
    if is_uri(rel) or rel.startswith("/"):
        return rel
    scheme, _, path = base_uri.partition("://")
    return f"{scheme}://{PurePosixPath(path).parent / rel}"


def _read_text(item: str) -> str:
    if not is_uri(item):
        return Path(item).read_text(encoding="utf-8")
    filesystem, path = _filesystem(item)
    with filesystem.open_input_stream(path) as f:
        return f.read().decode("utf-8")


def _manifest_sources(item: str) -> list[str]:
    from musilingo.data.manifest import read_manifest

    if not is_uri(item):
        return [r.audio for r in read_manifest(item)]
    import json

    out = []
    for n, line in enumerate(_read_text(item).splitlines(), 1):
        if line.strip():
            try:
                out.append(_join(item, json.loads(line)["audio"]))
            except (ValueError, KeyError, TypeError):
                raise MusiLingoError(
                    f"{item}:{n}: not a manifest line with an 'audio' field"
                ) from None
    return out


def _list_sources(item: str) -> list[str]:
    lines = [ln.strip() for ln in _read_text(item).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if is_uri(item):
        return [_join(item, ln) for ln in lines]
    base = Path(item).parent
    return [ln if is_uri(ln) or os.path.isabs(ln) else str(base / ln) for ln in lines]


def _folder_sources(item: str) -> list[str]:
    if not is_uri(item):
        found = find_audio_files(item)
        if not found:
            raise MusiLingoError(f"{item}: no audio files found in this folder")
        return [str(f) for f in found]
    from pyarrow import fs

    filesystem, path = _filesystem(item)
    infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
    scheme = item.partition("://")[0]
    found = sorted(
        f"{scheme}://{i.path}"
        for i in infos
        if i.type == fs.FileType.File and PurePosixPath(i.path).suffix.lower() in AUDIO_EXTENSIONS
    )
    if not found:
        raise MusiLingoError(f"{item}: no audio files found under this URI")
    return found


def _kind(item: str) -> str:
    """folder | file | missing, for a path or a URI."""
    if not is_uri(item):
        p = Path(item)
        return "folder" if p.is_dir() else "file" if p.is_file() else "missing"
    from pyarrow import fs

    filesystem, path = _filesystem(item)
    t = filesystem.get_file_info(path).type
    return {fs.FileType.Directory: "folder", fs.FileType.File: "file"}.get(t, "missing")


def expand_inputs(inputs: list[str]) -> list[str]:
    """Folders, manifests, list files and files -> the audio sources, in order, each once.

    Local sources keep the form they were given in (as the plain CLI names them); workers read
    them through :func:`absolute`.
    """
    out: list[str] = []
    for item in inputs:
        kind = _kind(item)
        suffix = PurePosixPath(item.partition("?")[0]).suffix.lower()
        if kind == "folder":
            out += _folder_sources(item)
        elif kind == "file" and suffix == ".jsonl":
            out += _manifest_sources(item)
        elif kind == "file" and suffix in LIST_SUFFIXES:
            out += _list_sources(item)
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def absolute(source: str) -> str:
    """Where a worker reads ``source``: URIs as they are, local paths made absolute (a local Ray
    worker's working folder need not be the caller's; on a cluster, paths must be on a shared
    file system mounted at the same place)."""
    return source if is_uri(source) else os.path.abspath(source)


def read_audio(
    location: str, name: str, sample_rate: int, max_duration_s: float | None = MAX_DURATION_S
) -> np.ndarray:
    """Decode one source to mono float32 at ``sample_rate``: samples [S].

    ``location`` is what :func:`absolute` gave, ``name`` the source as reported in errors.
    Raises :class:`musilingo.errors.AudioError` for a missing, unreadable or too long file.
    """
    if is_uri(location) and not location.startswith("file://"):
        from musilingo.errors import AudioError

        try:
            filesystem, path = _filesystem(location)
            with filesystem.open_input_stream(path) as f:
                data = f.read()
        except (OSError, ValueError) as e:  # pyarrow raises OSError / FileNotFoundError
            raise AudioError(name, f"cannot read: {e}") from None
        return decode_bytes(data, name, sample_rate, max_duration_s)[0]
    if location.startswith("file://"):
        location = location[len("file://") :]
    return load_audio(location, sample_rate, max_duration_s)[0]
