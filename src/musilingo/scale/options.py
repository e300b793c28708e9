"""How the Ray engine runs a job: :class:`RayOptions` (cluster address, actor counts, GPU shares,
shard size, retries, output format). The CLI's ``--engine ray`` flags are its fields. Imports
nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from musilingo.errors import ConfigError


@dataclass
class RayOptions:
    """The Ray engine (with --engine ray)."""

    address: str | None = None
    """Ray cluster to join: auto, ray://HOST:10001 or HOST:6379 (default: start a local Ray)"""
    workers: int = 2
    """generation actors, each holding the model once (and as many encoder actors unless
    --encoders)"""
    encoders: int | None = None
    """encoder actors (decode, window, encode; default: as many as --workers)"""
    num_cpus: int | None = None
    """CPUs of the local Ray started without --address (default: all of this machine's)"""
    gpus_per_worker: float = 0.0
    """GPU share of each generation actor, e.g. 0.25 puts four models on a GPU (0: CPU)"""
    gpus_per_encoder: float = 0.0
    """GPU share of each encoder actor (0: CPU)"""
    shard_files: int = 64
    """files per output shard; a killed job loses at most the shards being filled"""
    retries: int = 3
    """restarts of a dead actor and retries of its batch, before the batch is left out (its
    files are reported missing and a rerun does them)"""
    format: Literal["jsonl", "parquet"] = "jsonl"
    """shard format of the output folder"""

    def __post_init__(self) -> None:
        if self.workers < 1 or (self.encoders is not None and self.encoders < 1):
            raise ConfigError("--workers and --encoders must be at least 1")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ConfigError(f"--num-cpus must be at least 1, got {self.num_cpus}")
        if self.gpus_per_worker < 0 or self.gpus_per_encoder < 0:
            raise ConfigError("GPU shares must be 0 or more")
        if self.shard_files < 1 or self.retries < 0:
            raise ConfigError("--shard-files must be at least 1 and --retries at least 0")
        if self.format not in ("jsonl", "parquet"):
            raise ConfigError(f"unknown output format {self.format!r}; choose jsonl or parquet")
