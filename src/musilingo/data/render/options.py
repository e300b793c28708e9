"""The options of a render and the defaults they are checked against.

What it does: holds :class:`RenderOptions` (where to write, how many clips, seed, workers,
sources, soundfonts, clip lengths, the per-clip time limit, resume switches) and refuses bad ones
at construction - including the soundfonts reserved for independent evaluation.

What it does not: plan clips (:mod:`.plan`), run anything or touch the output folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from musilingo.errors import ConfigError

DEFAULT_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
# Reserved for independent evaluation: refused here so they never leak into training audio.
FORBIDDEN_SOUNDFONT_WORDS = ("musescore", "freepats", "timidity")
DEFAULT_SOURCES = ("music21", "mma", "abc")
SOURCE_WEIGHTS = {"music21": 0.35, "mma": 0.35, "abc": 0.30}
DEFAULT_NUM_CLIPS = 6000  # x ~20 s mean = ~33 h of audio
DEFAULT_CLIP_SECONDS = (10.0, 30.0)
SPLIT_NAMES = ("train", "valid", "test")


@dataclass
class RenderOptions:
    """Options of :func:`render_corpus`."""

    out_dir: Path
    """Folder for audio/, state/ and manifest.jsonl (created)."""
    num_clips: int = DEFAULT_NUM_CLIPS
    """Clips planned; the manifest holds those that rendered (failures are logged)."""
    seed: int = 0
    """Same seed (and sources, soundfonts, clip_seconds) gives the same clips and attributes."""
    workers: int = 2
    """Processes; 1 renders in this process."""
    sources: tuple[str, ...] = DEFAULT_SOURCES
    """Any of "music21", "mma", "abc"."""
    soundfonts: tuple[str, ...] = DEFAULT_SOUNDFONTS
    """SF2 files; one is drawn per clip."""
    clip_seconds: tuple[float, float] = DEFAULT_CLIP_SECONDS
    """Clip length range in seconds; a length is drawn uniformly per clip."""
    timeout_s: float = 60.0
    """Wall-clock limit for one clip (parse + MIDI + render); one that runs out is tried once more
    with ``TIMEOUT_RETRY_FACTOR`` times this limit."""
    progress: bool = True
    """Show a tqdm bar."""
    retry_failed: bool = False
    """On resume, try clips that failed before again."""
    keep_midi: bool = False
    """Also keep midi/<id>.mid (for checks and debugging)."""
    splits: tuple[str, ...] = ()
    """Render only the planned clips of these splits (empty: all). The plan and the clip ids do
    not change, so a later render of every split resumes from these clips."""
    only: tuple[str, ...] = ()
    """Render only these planned clip ids (empty: all); with ``splits``, only those of them in
    the splits. An id the plan does not hold is refused (another seed or clip count?)."""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.sources = tuple(self.sources)
        self.soundfonts = tuple(str(s) for s in self.soundfonts)
        bad = [s for s in self.sources if s not in SOURCE_WEIGHTS]
        if bad or not self.sources:
            raise ConfigError(f"sources must be a non-empty subset of {tuple(SOURCE_WEIGHTS)}, "
                              f"got {self.sources}")
        if self.num_clips < 1:
            raise ConfigError(f"num_clips must be >= 1, got {self.num_clips}")
        lo, hi = self.clip_seconds
        if not 1.0 <= lo <= hi:
            raise ConfigError(f"clip_seconds must satisfy 1 <= min <= max, got {self.clip_seconds}")
        if not self.soundfonts:
            raise ConfigError("at least one soundfont is needed")
        for sf in self.soundfonts:
            if any(w in sf.lower() for w in FORBIDDEN_SOUNDFONT_WORDS):
                raise ConfigError(f"{sf}: reserved for independent evaluation; not for training")
            if not os.path.isfile(sf):
                raise ConfigError(f"{sf}: soundfont not found")
        self.splits = tuple(self.splits)
        self.only = tuple(self.only)
        bad = [s for s in self.splits if s not in SPLIT_NAMES]
        if bad:
            raise ConfigError(f"splits must be a subset of {SPLIT_NAMES}, got {self.splits}")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
