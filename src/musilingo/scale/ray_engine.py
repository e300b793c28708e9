"""Run a :class:`~musilingo.scale.job.JobSpec` over many files as a Ray Data pipeline.

::

    sources ──> EncodeStage actors ──> GenerateStage actors ──> write_stage tasks ──> driver
               (decode, window,        (the model, once per     (one shard per batch   (counts,
                encode; CPU)            actor; num_gpus share)   of files, atomic)      summary)

A ``features`` job stops after the encoder; an ``analyze`` job runs
``musilingo.analysis`` in the encoder's place and stops there (remote URIs: local paths only, as
``analysis.analyze_file`` reads files). Without ``address`` a local Ray is started with
``num_cpus`` CPUs (so the same command runs on a laptop) and shut down at the end; with one
(``auto``, ``ray://host:10001``, ``host:6379``) the job joins that cluster. On a cluster the
inputs and the output must be reachable from every node: a shared file system mounted at the same
path, or URIs (``s3://``...).

Resume: files already answered in the output folder are skipped (``ShardSink.done_sources``).
Failures: a file's problem is a row with ``error``; an actor that dies is restarted and its batch
retried up to ``retries`` times; a batch that still fails is left out (Ray Data's
``max_errored_blocks``) and its files are reported as missing: a rerun completes exactly them.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

from musilingo.errors import ConfigError, MusiLingoError
from musilingo.scale.inputs import absolute, expand_inputs
from musilingo.scale.job import JobSpec
from musilingo.scale.options import RayOptions
from musilingo.scale.sinks import ShardSink
from musilingo.scale.stages import AnalyzeStage, BatchHook, EncodeStage, GenerateStage, write_stage

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What one run did (also appended to ``OUT/runs.jsonl``)."""

    out: str
    inputs: int
    skipped_done: int
    answered: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """the whole run: listing, resume check, Ray start, the job, shutdown"""
    ray_start_s: float = 0.0
    """of which starting (or joining) Ray"""
    workers: int = 0

    @property
    def complete(self) -> bool:
        return not self.failed and not self.missing

    def to_json(self) -> dict:
        d = asdict(self)
        d["failed"] = len(self.failed)
        d["missing"] = len(self.missing)
        return d


def _actor_cpus(res: RayOptions, total_cpus: float) -> float:
    """Logical CPUs per actor: 1, or a share when a small machine runs more actors than CPUs
    (so a 2-CPU laptop still starts 2 encoders + 2 generators)."""
    n = res.workers + (res.encoders or res.workers)
    return min(1.0, total_cpus / n) if total_cpus else 1.0


def run_job(
    job: JobSpec,
    inputs: list[str],
    out: str,
    options: RayOptions | None = None,
    progress: bool = True,
    on_batch: BatchHook | None = None,
) -> RunSummary:
    """Answer (or encode) every input not yet done in ``out``; returns what this run did.

    ``on_batch`` is called by the last computing stage with each batch's sources before it is
    processed (fault injection in tests; it must be picklable).
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray engine needs the scale extra: pip install 'musilingo[scale]'"
        ) from None
    res = options or RayOptions()
    t0 = time.perf_counter()
    sink = ShardSink(out, res.format)
    sink.check_job(job.key())
    sink.remove_temp_files()
    sources = expand_inputs(inputs)
    done = sink.done_sources()
    todo = [s for s in sources if s not in done]
    summary = RunSummary(
        out=sink.out,
        inputs=len(sources),
        skipped_done=len(sources) - len(todo),
        workers=res.workers,
    )
    if not todo:
        summary.seconds = time.perf_counter() - t0
        sink.append_run(summary.to_json())
        return summary

    started = False
    t_start = time.perf_counter()
    if not ray.is_initialized():
        if res.address:
            ray.init(address=res.address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=res.num_cpus or os.cpu_count(),
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        started = True
    summary.ray_start_s = time.perf_counter() - t_start
    try:
        _run(ray, job, todo, sink, res, summary, progress, on_batch)
    finally:
        if started:
            ray.shutdown()
    summary.seconds = time.perf_counter() - t0
    sink.append_run(summary.to_json())
    return summary


def _run(
    ray,
    job: JobSpec,
    todo: list[str],
    sink: ShardSink,
    res: RayOptions,
    summary: RunSummary,
    progress: bool,
    on_batch: BatchHook | None,
) -> None:
    from ray.data import DataContext

    if not log.isEnabledFor(logging.INFO):  # Ray Data's plan and timing lines only with -v
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = DataContext.get_current()
    ctx.max_errored_blocks = len(
        todo
    )  # a batch that keeps failing is left out; its files are rerun
    ctx.enable_progress_bars = False
    ctx.verbose_progress = False
    cpus = _actor_cpus(res, ray.cluster_resources().get("CPU", 0))
    threads = max(1, int(cpus))
    n_enc = res.encoders or res.workers
    bs = job.batch_size
    # Ray 2.60 warns that these "ray_remote_args" go in 2.64 (pyproject caps ray below it); no
    # named parameter replaces them yet, and without them a file that kills its worker every
    # time would be retried forever
    retry = dict(max_restarts=res.retries, max_task_retries=res.retries)
    warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
    final = job.task in ("features", "analyze")  # no generation stage
    ds = ray.data.from_items(
        [{"source": s, "location": absolute(s)} for s in todo],
        override_num_blocks=max(1, math.ceil(len(todo) / bs)),
    )
    pool = ray.data.ActorPoolStrategy
    first = AnalyzeStage if job.task == "analyze" else EncodeStage
    def stage(ds, cls, actors: int, gpus: float, hook: BatchHook | None):
        """``ds`` through a pool of ``actors`` actors of stage ``cls``, each with ``gpus``."""
        return ds.map_batches(
            cls,
            batch_size=bs,
            batch_format="numpy",
            compute=pool(size=actors),
            num_cpus=cpus,
            num_gpus=gpus or None,
            fn_constructor_kwargs=dict(
                job=job, threads=threads, device="cuda" if gpus else "cpu", on_batch=hook
            ),
            **retry,
        )

    ds = stage(ds, first, n_enc, res.gpus_per_encoder, on_batch if final else None)
    if not final:
        ds = stage(ds, GenerateStage, res.workers, res.gpus_per_worker, on_batch)
    ds = ds.map_batches(
        write_stage,
        batch_size=res.shard_files,
        batch_format="numpy",
        num_cpus=0.1,
        fn_kwargs=dict(out=sink.out, fmt=sink.fmt),
        max_retries=res.retries,
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="file", file=sys.stderr, dynamic_ncols=True)
    seen: set[str] = set()
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for source, error in zip(batch["source"], batch["error"]):
                seen.add(str(source))
                if error:
                    summary.failed[str(source)] = str(error)
                else:
                    summary.answered += 1
            if bar:
                bar.update(len(batch["source"]))
    except Exception as e:  # the job itself broke (e.g. a model that cannot load)
        raise MusiLingoError(
            f"the Ray job stopped: {type(e).__name__}: "
            f"{(str(e).strip().splitlines() or [''])[-1]}; finished shards are kept, "
            "rerun to resume"
        ) from e
    finally:
        if bar:
            bar.close()
    summary.missing = [s for s in todo if s not in seen]
