"""``musilingo data render``: the command-line entry point of the corpus render.

What it does: turns the CLI's comma-separated sources and soundfonts into options, runs
:func:`~musilingo.data.render.pool.render_corpus` and prints where the manifest and the failures
are.

What it does not: anything else - planning, rendering and resuming live in the other modules.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from musilingo.data.render.options import (
    DEFAULT_CLIP_SECONDS,
    DEFAULT_NUM_CLIPS,
    DEFAULT_SOUNDFONTS,
    DEFAULT_SOURCES,
)
from musilingo.data.render.pool import render_corpus
from musilingo.errors import ConfigError


def render_command(out: str, clips: int = DEFAULT_NUM_CLIPS, seed: int = 0, workers: int = 2,
                   sources: str = ",".join(DEFAULT_SOURCES), soundfonts: str = "",
                   min_seconds: float = DEFAULT_CLIP_SECONDS[0],
                   max_seconds: float = DEFAULT_CLIP_SECONDS[1], timeout: float = 60.0,
                   retry_failed: bool = False, keep_midi: bool = False, splits: str = "",
                   only: str = "", quiet: bool = False, as_json: bool = False) -> Path:
    """Render the synthetic training corpus (music21 scores, ABC folk tunes, MMA grooves).

    Args:
        out: output folder (audio/, state/, manifest.jsonl); rerun the same command to resume.
        clips: clips to plan (6000 x ~20 s is ~33 h of audio).
        seed: plan seed; the same seed gives the same clips and attributes.
        workers: parallel processes.
        sources: comma-separated subset of music21, mma, abc.
        soundfonts: comma-separated SF2 paths (default: FluidR3_GM and TimGM6mb).
        min_seconds: shortest clip.
        max_seconds: longest clip.
        timeout: seconds allowed per clip (a clip that runs out is tried once more with twice that).
        retry_failed: try clips that failed in an earlier run again.
        keep_midi: also keep the MIDI of each clip under midi/.
        splits: comma-separated subset of train, valid, test: render only those splits' clips
            (the same ids as in a full render, which can resume from them; default: all).
        only: a text file of clip ids, one per line: render only those clips of the plan
            (for example the grounded phase's training subset: scripts/grounded_subsets.py).
        quiet: no progress bar and no summary line.
        as_json: print the summary as one JSON object {"manifest", "seconds", "failed"}.
    """
    if clips < 1 or workers < 1 or not 0 < min_seconds <= max_seconds or timeout <= 0:
        raise ConfigError("need clips >= 1, workers >= 1, 0 < min_seconds <= max_seconds and "
                          "timeout > 0")
    sfs = tuple(s for s in soundfonts.split(",") if s) or DEFAULT_SOUNDFONTS
    srcs = tuple(s.strip() for s in sources.split(",") if s.strip())
    ids: tuple[str, ...] = ()
    if only:
        try:
            ids = tuple(x.strip() for x in Path(only).read_text().splitlines() if x.strip())
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{only}: cannot read the clip ids to render ({e})") from e
        if not ids:
            raise ConfigError(f"{only}: holds no clip ids (one per line)")
    t = time.time()
    path = render_corpus(out, num_clips=clips, seed=seed, workers=workers, sources=srcs,
                         soundfonts=sfs, clip_seconds=(min_seconds, max_seconds),
                         timeout_s=timeout, progress=not quiet, retry_failed=retry_failed,
                         keep_midi=keep_midi,
                         splits=tuple(x.strip() for x in splits.split(",") if x.strip()),
                         only=ids)
    n_failed = len(list((Path(out) / "state" / "failed").glob("*.json")))
    if as_json:
        print(json.dumps({"manifest": str(path), "seconds": round(time.time() - t, 1),
                          "failed": n_failed}))
    elif not quiet:
        print(f"manifest: {path} ({time.time() - t:.0f} s; {n_failed} clips failed, "
              f"see {Path(out) / 'state' / 'failed'})")
    return path
