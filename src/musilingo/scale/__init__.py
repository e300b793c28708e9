"""Batch inference beyond one process: caption, ask or encode a music library on a Ray cluster.

The optional ``scale`` extra (``pip install musilingo[scale]``: Ray Data and pyarrow) runs the
same answering rule as :meth:`musilingo.model.MusiLingo.iter_answers` as a Ray Data pipeline:

- :mod:`musilingo.scale.job`: :class:`JobSpec`, what is computed (task, question, model,
  decoding); its key is stored beside the output so a rerun never mixes settings;
- :mod:`musilingo.scale.inputs`: a folder, a manifest, a list file or single files, local or any
  URI pyarrow's filesystems read (``s3://``, ``gs://`` where the user has them);
- :mod:`musilingo.scale.stages`: the per-batch work (decode + encode, generate) as plain classes,
  usable and testable without Ray;
- :mod:`musilingo.scale.sinks`: sharded JSONL / Parquet output, one row per file and window,
  each shard written atomically; which files are done (resume);
- :mod:`musilingo.scale.options`: :class:`~musilingo.scale.options.RayOptions`, how wide and
  where (the CLI's ``--engine ray`` flags);
- :mod:`musilingo.scale.ray_engine`: the Ray Data wiring (actor pools, retries, local start).

Importing this package loads neither Ray nor torch. Training across nodes is not here: it is
``accelerate launch`` of ``musilingo train`` (docs/scale-out.md).
"""

from __future__ import annotations

import importlib.util

TASKS = ("caption", "ask", "features") + (
    ("analyze",) if importlib.util.find_spec("musilingo.analysis") else ()
)
"""What a job computes: answers, pooled encoder features per window, or measured facts
(``musilingo.analysis``: tempo, meter, key, loudness, tags; one row per file)."""

__all__ = ["TASKS"]
