"""``musilingo analyze``: print the measured facts of audio files.

What it does: analyses each file on its own (:func:`musilingo.analysis.pipeline.analyze_file`),
prints its facts (a readable block, or one JSON object per line with ``as_json``) and reports a
bad file (unreadable, empty, silent, too short or too long) as one error line naming it, then
goes on with the others. What it does not: register itself with the CLI (``musilingo.cli``
builds the command from this signature and docstring).
"""

from __future__ import annotations

import json
import sys

EXIT_OK, EXIT_PARTIAL = 0, 1


def _text(path: str, facts) -> str:
    t, m, k, lo = facts.tempo, facts.meter, facts.key, facts.loudness
    lines = [f"{path}", f"  {facts.summary()}",
             f"  tempo: {t.bpm:.1f} bpm (confidence {t.confidence:.2f}; librosa's stock estimate "
             f"{t.stock_bpm:.1f}), {len(t.beats)} beats, {len(t.downbeats)} downbeats",
             f"  meter: {m.signature}, {m.feel} (confidence {m.confidence:.2f}; feel "
             f"{m.feel_confidence:.2f})",
             f"  key: {k.tonic} {k.mode} (confidence {k.confidence:.2f}; correlation "
             f"{k.correlation:.2f} with the {k.profile} profile{'' if k.tonal else '; not tonal'})",
             f"  loudness: {lo.lufs:.1f} LUFS, range {lo.loudness_range_lu:.1f} LU ({lo.dynamics}), "
             f"peak {lo.peak_dbfs:.1f} dBFS"]
    if facts.tags is not None:
        g = facts.tags
        named = ", ".join(f"{x.name} {x.probability:.2f}" for x in g.tags) or "none"
        lines.append(f"  tags: {named}")
        lines.append(f"  vocals: {'yes' if g.vocals else 'no'} (voice-tag probability "
                     f"{g.vocal_probability:.2f})")
    return "\n".join(lines)


def analyze_command(files: list[str], as_json: bool = False, tags: bool = True,
                    max_duration: float = 600.0) -> int:
    """Measure tempo (with beats and downbeats), meter, key, loudness and real-world tags of
    audio files, each with a confidence.

    Args:
        files: audio files (any format ffmpeg or libsndfile reads).
        as_json: print one JSON object per file ({"file": ..., "facts": {...}, "summary": ...},
            or {"file": ..., "error": ...}) instead of text.
        tags: run the musicnn taggers (real-world tags and the vocals fact); --no-tags is
            about twice as fast.
        max_duration: longest file accepted, in seconds.

    Returns:
        0 when every file was analysed, 1 when some failed (each failure is printed on stderr,
        naming the file).
    """
    from musilingo.analysis.pipeline import analyze_file
    from musilingo.errors import MusiLingoError

    failed = 0
    for path in files:
        try:
            facts = analyze_file(path, with_tags=tags, max_duration_s=max_duration)
        except MusiLingoError as e:
            failed += 1
            print(f"musilingo analyze: {e}", file=sys.stderr)
            if as_json:
                print(json.dumps({"file": str(path), "error": str(e)}, ensure_ascii=False),
                      flush=True)
            continue
        if as_json:
            print(json.dumps({"file": str(path), "facts": facts.to_dict(),
                              "summary": facts.summary()}, ensure_ascii=False), flush=True)
        else:
            print(_text(str(path), facts), flush=True)
    return EXIT_PARTIAL if failed else EXIT_OK
