"""Output of a scaled job: sharded JSONL or Parquet, one row per file and window, resumable.

Layout of an output folder (a local path, or a URI pyarrow's filesystems write)::

    OUT/job.json               the job's key (JobSpec.key()); a rerun with other settings is refused
    OUT/rows/part-<id>.jsonl   (or .parquet) finished shards; all rows of a file are in one shard
    OUT/runs.jsonl             one summary line per run (files done, failed, missing, seconds)

Rows of ``caption`` / ``ask`` are the plain CLI's ``--json`` lines: ``{"scope": "window", ...}``
per window of a long file, then ``{"scope": "track", "source", "question", "text", "start_s",
"end_s", "error"}``. Rows of ``features`` are one per window: ``scope``, ``source``, ``start_s``,
``end_s``, ``n_tokens``, ``dim`` and ``features`` (the [n_tokens, dim] float32 matrix, flattened).
Rows of ``analyze`` are one per file: ``scope: "track"``, ``source``, ``facts`` (the JSON object of
``musilingo analyze --json``, as a string) and ``summary``.
A file that failed has one row, ``scope: "track"``, with ``error`` set to its problem.

Atomic shards: a local shard is written to ``rows/.part-<id>.<ext>.tmp`` and renamed; an object
store publishes an object only when its upload completes. So every shard present is whole, a
killed job loses only shards it had not finished, and a file counts as done exactly when a
shard holds a row of it without an error (:meth:`ShardSink.done_sources`). Failed files are
retried by a rerun, as by the plain CLI's ``--out``; their newest rows win (:func:`read_rows`).
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from pathlib import Path, PurePosixPath

from musilingo.data.manifest import atomic_write_bytes
from musilingo.errors import ConfigError, MusiLingoError
from musilingo.scale.inputs import is_uri

FORMATS = ("jsonl", "parquet")
ROWS = "rows"


def _fs(out: str):
    """(pyarrow FileSystem, base path) of an output folder."""
    from pyarrow import fs

    if is_uri(out):
        return fs.FileSystem.from_uri(out)
    return fs.LocalFileSystem(), os.path.abspath(out)


def _schema(rows: list[dict]):
    """The fixed Arrow schema of a task's rows, so every shard reads as one table."""
    import pyarrow as pa

    span = [
        ("scope", pa.string()),
        ("source", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
    ]
    if "facts" in rows[0]:  # analyze: the facts as one JSON object (a string column)
        return pa.schema(
            [
                ("scope", pa.string()),
                ("source", pa.string()),
                ("facts", pa.string()),
                ("summary", pa.string()),
                ("error", pa.string()),
            ]
        )
    if "features" in rows[0]:
        return pa.schema(
            span
            + [
                ("n_tokens", pa.int64()),
                ("dim", pa.int64()),
                ("features", pa.list_(pa.float32())),
                ("error", pa.string()),
            ]
        )
    return pa.schema(
        span + [("question", pa.string()), ("text", pa.string()), ("error", pa.string())]
    )


class ShardSink:
    """Write and read the shards of one output folder (see the module docstring)."""

    def __init__(self, out: str | os.PathLike, fmt: str = "jsonl"):
        if fmt not in FORMATS:
            raise ConfigError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.out = str(out) if is_uri(str(out)) else os.path.abspath(out)
        self.fmt = fmt
        self.fs, self.base = _fs(self.out)
        self.local = not is_uri(self.out) or self.out.startswith("file://")

    def _path(self, *parts: str) -> str:
        return str(PurePosixPath(self.base, *parts))

    # ------------------------------------------------------------------ job key
    def check_job(self, key: dict) -> None:
        """Store ``key`` as ``job.json``, or refuse when the folder holds a job with another one
        (the musilingo version may differ: it is recorded, not compared)."""
        from pyarrow import fs

        self.fs.create_dir(self._path(ROWS), recursive=True)
        path = self._path("job.json")
        if self.fs.get_file_info(path).type == fs.FileType.File:
            with self.fs.open_input_stream(path) as f:
                old = json.loads(f.read().decode())
            strip = lambda d: {k: v for k, v in d.items() if k != "musilingo_version"}  # noqa: E731
            new = json.loads(json.dumps(key))
            if strip(old) != strip(new):
                diff = sorted(
                    k for k in set(strip(old)) | set(strip(new)) if old.get(k) != new.get(k)
                )
                raise ConfigError(
                    f"{self.out} holds a job with other settings ({', '.join(diff)} "
                    "differ); use another output folder"
                )
            return
        self._put(path, (json.dumps(key, indent=2, sort_keys=True) + "\n").encode())

    # ------------------------------------------------------------------ writing
    def _put(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically (local: temp + rename; else one upload)."""
        if not self.local:
            with self.fs.open_output_stream(path) as f:
                f.write(data)
            return
        atomic_write_bytes(path, data)

    def write(self, rows: list[dict]) -> str | None:
        """Write ``rows`` as one new shard (atomically); returns its path (None for no rows).
        Callers pass all rows of each file together."""
        if not rows:
            return None
        name = f"part-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}.{self.fmt}"
        if self.fmt == "jsonl":
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        else:
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            import pyarrow as pa

            pq.write_table(pa.Table.from_pylist(rows, schema=_schema(rows)), buf)
            data = buf.getvalue()
        path = self._path(ROWS, name)
        self.fs.create_dir(self._path(ROWS), recursive=True)
        self._put(path, data)
        return path

    def append_run(self, summary: dict) -> None:
        """Add one line to ``runs.jsonl`` (rewritten whole, atomically: it stays short)."""
        path = self._path("runs.jsonl")
        old = b""
        from pyarrow import fs

        if self.fs.get_file_info(path).type == fs.FileType.File:
            with self.fs.open_input_stream(path) as f:
                old = f.read()
        self._put(path, old + (json.dumps(summary) + "\n").encode())

    # ------------------------------------------------------------------ reading
    def shards(self) -> list[str]:
        """Finished shards (either format), oldest first; temp files of a killed job are skipped."""
        from pyarrow import fs

        infos = self.fs.get_file_info(fs.FileSelector(self._path(ROWS), allow_not_found=True))
        names = [
            i.path
            for i in infos
            if i.type == fs.FileType.File
            and PurePosixPath(i.path).name.startswith("part-")
            and PurePosixPath(i.path).suffix.lstrip(".") in FORMATS
        ]
        return sorted(names, key=lambda p: PurePosixPath(p).name)

    def remove_temp_files(self) -> int:
        """Delete temp files left by a killed job (local folders only); returns how many. Only one
        job may write to a folder at a time."""
        if not self.local:
            return 0
        rows = Path(self._path(ROWS))
        stale = list(rows.glob(".part-*.tmp")) if rows.is_dir() else []
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    def read_shard(self, path: str, columns: list[str] | None = None) -> list[dict]:
        """The rows of one shard (only ``columns`` of a Parquet shard, when given)."""
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            with self.fs.open_input_file(path) as f:
                table = pq.read_table(f, columns=columns)
            return table.to_pylist()
        with self.fs.open_input_stream(path) as f:
            text = f.read().decode("utf-8")
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:  # shards are atomic: this is damage, not a kill
            raise MusiLingoError(f"{path}: not a JSONL shard ({e.msg})") from None

    def done_sources(self) -> set[str]:
        """Files a shard holds a row of without an error: what a rerun skips."""
        done: set[str] = set()
        for path in self.shards():
            for r in self.read_shard(path, columns=["source", "error"]):
                if not r.get("error"):
                    done.add(r["source"])
        return done


def read_rows(out: str | os.PathLike) -> list[dict]:
    """Every row of an output folder, each file's rows from the newest shard that has it (a file
    done after a failure keeps only its answer), in shard order."""
    sink = ShardSink(out)
    content = [sink.read_shard(p) for p in sink.shards()]
    best: dict[str, tuple[int, bool]] = {}  # source -> (shard index, answered)
    for i, rows in enumerate(content):
        ok: dict[str, bool] = {}
        for r in rows:
            ok[r["source"]] = ok.get(r["source"], True) and not r.get("error")
        for source, answered in ok.items():
            if source not in best or answered or not best[source][1]:
                best[source] = (i, answered)  # newer wins, but a failure never hides an answer
    return [r for i, rows in enumerate(content) for r in rows if best[r["source"]][0] == i]
