"""Rendering the plan: resumable and parallel.

What it does: :func:`render_corpus` plans the clips, skips those already done (and, unless
asked, those that failed), renders the rest in a process pool, and writes the manifest of the
finished clips atomically. Each pool task (:func:`_work`) renders one clip under a SIGALRM
backstop, tries a clip that ran out of time once more with ``TIMEOUT_RETRY_FACTOR`` times the
limit, and records it in ``state/done/`` or ``state/failed/``; it never raises.

What it does not: render a clip itself (:mod:`.clip`) or parse command-line text
(:mod:`.command`).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import signal
import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

from musilingo.data.manifest import Record, write_manifest
from musilingo.data.render.clip import render_clip
from musilingo.data.render.options import (
    DEFAULT_CLIP_SECONDS,
    DEFAULT_NUM_CLIPS,
    DEFAULT_SOUNDFONTS,
    DEFAULT_SOURCES,
    RenderOptions,
)
from musilingo.data.render.plan import ClipSpec, plan_clips, split_for
from musilingo.data.render.timeouts import _ClipTimeout, _on_alarm
from musilingo.errors import ConfigError


def _state_paths(out_dir: Path) -> tuple[Path, Path]:
    return out_dir / "state" / "done", out_dir / "state" / "failed"


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False))
    os.replace(tmp, path)


TIMEOUT_RETRY_FACTOR = 2.0
"""A clip that runs out of time is tried once more with this many times the limit."""


def _render_with_alarm(spec: ClipSpec, options: RenderOptions) -> dict:
    """``render_clip`` under SIGALRM (where this is the main thread) as a last-resort limit."""
    use_alarm = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGALRM, _on_alarm) if use_alarm else None
    if use_alarm:
        signal.alarm(int(math.ceil(options.timeout_s)) + 5)
    try:
        return render_clip(spec, options)
    finally:
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


def _work(args: tuple[ClipSpec, RenderOptions]) -> tuple[str, bool, str]:
    """Pool task: render one clip; record done/failed; never raises.

    Running out of time depends on the machine's load, not on the clip (a render with the test
    suite beside it dropped a clip that renders in seconds when idle), so a timed-out clip is
    tried once more with ``TIMEOUT_RETRY_FACTOR`` times the limit before it is logged as failed;
    other failures are properties of the clip and are not retried.
    """
    spec, options = args
    done_dir, failed_dir = _state_paths(options.out_dir)
    try:
        try:
            rec = _render_with_alarm(spec, options)
        except _ClipTimeout:
            longer = replace(options, timeout_s=options.timeout_s * TIMEOUT_RETRY_FACTOR)
            rec = _render_with_alarm(spec, longer)
        _write_json_atomic(done_dir / f"{spec.clip_id}.json", rec)
        (failed_dir / f"{spec.clip_id}.json").unlink(missing_ok=True)
        return spec.clip_id, True, ""
    except Exception as e:  # noqa: BLE001 - a failed clip is logged, never fatal
        msg = f"{type(e).__name__}: {e}"[:500]
        _write_json_atomic(failed_dir / f"{spec.clip_id}.json",
                           {"id": spec.clip_id, "work_id": spec.work_id, "error": msg,
                            "spec": asdict(spec)})
        return spec.clip_id, False, msg


def render_corpus(out_dir: str | os.PathLike, num_clips: int = DEFAULT_NUM_CLIPS, seed: int = 0,
                  workers: int = 2, sources: Sequence[str] = DEFAULT_SOURCES,
                  soundfonts: Sequence[str] = DEFAULT_SOUNDFONTS,
                  clip_seconds: tuple[float, float] = DEFAULT_CLIP_SECONDS,
                  timeout_s: float = 60.0, progress: bool = True, retry_failed: bool = False,
                  keep_midi: bool = False, splits: Sequence[str] = (),
                  only: Sequence[str] = ()) -> Path:
    """Render (or resume rendering) the corpus into ``out_dir``; return the manifest path.

    Clips already in ``state/done/`` (with their audio present) are not rendered again; clips
    that failed before are skipped unless ``retry_failed``; with ``splits`` only the clips of
    those splits are rendered, with ``only`` only those clip ids. The manifest lists every
    finished clip of the plan (of any split) in plan order, its captions and Q&A written by the
    current caption generator, and is written atomically at the end.
    """
    options = RenderOptions(out_dir=Path(out_dir), num_clips=num_clips, seed=seed,
                            workers=workers, sources=tuple(sources),
                            soundfonts=tuple(soundfonts), clip_seconds=tuple(clip_seconds),
                            timeout_s=timeout_s, progress=progress, retry_failed=retry_failed,
                            keep_midi=keep_midi, splits=tuple(splits), only=tuple(only))
    specs = plan_clips(options)
    wanted = set(options.only)
    unknown = sorted(wanted - {s.clip_id for s in specs})
    if unknown:
        raise ConfigError(f"{len(unknown)} of the {len(wanted)} clip ids to render are not in "
                          f"this plan of {options.num_clips} clips (seed {options.seed}), e.g. "
                          f"{unknown[0]!r}: were they planned with another --clips or --seed?")
    done_dir, failed_dir = _state_paths(options.out_dir)
    done_dir.mkdir(parents=True, exist_ok=True)
    failed_dir.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(options.out_dir / "state" / "options.json",
                       {k: (str(v) if isinstance(v, Path) else v)
                        for k, v in asdict(options).items()})

    def finished(s: ClipSpec) -> bool:
        return (done_dir / f"{s.clip_id}.json").is_file() and \
            (options.out_dir / "audio" / f"{s.clip_id}.wav").is_file()

    todo = [s for s in specs if not finished(s)
            and (not options.splits or split_for(s.split_key) in options.splits)
            and (not wanted or s.clip_id in wanted)
            and (options.retry_failed or not (failed_dir / f"{s.clip_id}.json").is_file())]
    bar = None
    if options.progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="render", unit="clip")
    n_fail = 0
    tasks = [(s, options) for s in todo]
    if options.workers == 1 or len(todo) <= 1:
        results = map(_work, tasks)
        pool = None
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp
        pool = ctx.Pool(options.workers, maxtasksperchild=200)
        results = pool.imap_unordered(_work, tasks)
    try:
        for _cid, ok, _msg in results:
            n_fail += not ok
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=n_fail)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    # The text is written afresh from each clip's attributes (make_caption / make_qa are
    # deterministic in attributes and seed), and the instrument families afresh from its GM
    # instrument names: a fix to the caption generator or to the family table
    # (musilingo.music.gm_program_family) then reaches a resumed corpus too, whose state/done/
    # records hold what the run that rendered them wrote.
    from musilingo.data import captions
    from musilingo.data.render.midi_analysis import families_of

    records = []
    for s in specs:
        p = done_dir / f"{s.clip_id}.json"
        if p.is_file() and finished(s):
            rec = Record.from_json(json.loads(p.read_text()), str(p))
            attrs = rec.attributes
            if attrs.get("instruments"):
                attrs = {**attrs, "instrument_families": families_of(attrs["instruments"])}
            records.append(replace(rec, attributes=attrs,
                                   caption=captions.make_caption(attrs, seed=s.seed),
                                   qa=captions.make_qa(attrs, seed=s.seed)))
    manifest = options.out_dir / "manifest.jsonl"
    if records:
        write_manifest(manifest, records)
    return manifest
