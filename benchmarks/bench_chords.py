"""Score the chord estimate (``musilingo.analysis.chords``) against the corpus's chord truth.

    .venv/bin/python benchmarks/bench_chords.py --split valid --grid   # choose the settings
    .venv/bin/python benchmarks/bench_chords.py --split test           # score, once, at the end

Truth: the MMA clips' ``chord_timeline`` attribute (one chord per bar, on the bars of the MIDI
the clip was rendered from; written by ``musilingo data render`` since the chord estimate was
added). Clips without it (music21, ABC, and MMA clips rendered before) are skipped. Scores are
mir_eval's (MIREX conventions): ``majmin`` (the label reduced to its major / minor triad; chords
that are neither, such as half-diminished sevenths, are left out), ``sevenths`` (the same with
the dominant, major and minor sevenths told apart; sixths and half-diminished left out),
``root``, and ``mirex`` (at least three pitch classes in common), each a weighted accuracy over
time, then weighted by clip length over the clips: overall, per MMA genre and with / without
drums. Baselines in the same run: the textbook template matcher without smoothing, beat
synchronisation or bass (frame-wise argmax), and "always the tonic triad of the true key". Also
scored: the shipped example clip (``example``), the one clip with chord truth under a melody.
``--grid`` scores every combination of the settings below on the split (and on the example)
and prints the best first; the chosen one goes into ``chords.PARAMS`` by hand (docs/analysis.md
says how it was chosen).

Only librosa's part of the frontend is measured (``<id>.base.npz`` under ``--cache``, by default
the cache ``bench_analysis.py`` uses; an entry written before the bass chroma existed is measured
again). Render the clips it needs alone: the MMA clips of the split, or the whole split
(``musilingo data render corpus --clips 4000 --splits valid``). Results go to
``benchmarks/results/chords-<split>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from musilingo.analysis import chords  # noqa: E402
from musilingo.analysis.frontend import Frontend, measure  # noqa: E402
from musilingo.music import NO_CHORD  # noqa: E402

GRID = {"vocabulary": chords.VOCABULARIES, "harmonics": (1, 3, 6), "per_beat": (True, False),
        "bass_weight": (0.0, 0.25, 0.5, 1.0), "sharpness": (20.0, 40.0),
        "self_prob": (0.5, 0.9, 0.98)}
EXAMPLE = ROOT / "src" / "musilingo" / "assets" / "example.ogg"  # truth in example.json
METRICS = ("majmin", "sevenths", "root", "mirex")


def frontend(rec: dict, corpus: Path, cache: Path) -> Frontend:
    from musilingo.analysis import frontend as fm
    from musilingo.audio import load_audio

    p = cache / f"{rec['id']}.base.npz"
    if p.exists():
        z = dict(np.load(p))
        if "bass_chroma" in z:
            z.pop("seconds", None)
            return Frontend.from_npz(z)
    y, sr = load_audio(corpus / rec["audio"], fm.SAMPLE_RATE)
    t = time.perf_counter()
    d = measure(y, sr, notes=False, tags=False).to_npz()
    d["seconds"] = np.float64(time.perf_counter() - t)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(p, **d)
    d.pop("seconds")
    return Frontend.from_npz(d)


def score(truth: list, segments: list) -> dict[str, float]:
    """mir_eval's chord scores of estimated ``segments`` against ``truth`` [[start, end, label]]."""
    import mir_eval

    ref_int = np.array([[s, e] for s, e, _ in truth], float)
    ref_lab = [c for _, _, c in truth]
    est_int = np.array([[s.start, s.end] for s in segments], float)
    est_lab = [s.label for s in segments]
    scores = mir_eval.chord.evaluate(ref_int, ref_lab, est_int, est_lab)
    return {m: float(scores[m]) for m in METRICS}


def run(clips: list[tuple[dict, Frontend, np.ndarray]], params: chords.ChordParams) -> dict:
    """Clip-length-weighted mean scores of ``params`` over ``clips`` (record, frontend, beats)."""
    total, sums, no_chord = 0.0, dict.fromkeys(METRICS, 0.0), 0.0
    for rec, fe, beats in clips:
        segments = chords.estimate_chords(fe, beats, params).segments
        s = score(rec["attributes"]["chord_timeline"], segments)
        w = rec["attributes"]["chord_timeline"][-1][1] - rec["attributes"]["chord_timeline"][0][0]
        total += w
        no_chord += sum(g.end - g.start for g in segments if g.label == NO_CHORD)
        for m in METRICS:
            sums[m] += w * s[m]
    # the truth never has "no chord": time estimated as N is time missed
    return {**{m: round(sums[m] / total, 4) for m in METRICS},
            "no_chord_share": round(no_chord / total, 4)}


def example_clip() -> tuple[dict, Frontend, np.ndarray]:
    """The shipped example (scripts/make_example_clip.py): the one clip with chord truth under a
    melody (MMA clips have none), as (record, frontend, beats)."""
    from musilingo.analysis import frontend as fm
    from musilingo.analysis.pipeline import rhythm
    from musilingo.audio import load_audio

    truth = json.loads(EXAMPLE.with_suffix(".json").read_text())
    y, sr = load_audio(EXAMPLE, fm.SAMPLE_RATE)
    fe = measure(y, sr, notes=False, tags=False)
    return {"id": "example", "attributes": truth}, fe, np.asarray(rhythm(fe)[1])


def tonic_triad(rec: dict) -> list:
    from musilingo.analysis.facts import ChordSegment
    from musilingo.music import chord_label, pitch_class

    a = rec["attributes"]
    label = chord_label(pitch_class(a["key_tonic"]), "min" if a["key_mode"] == "minor" else "maj")
    tl = a["chord_timeline"]
    return [ChordSegment(tl[0][0], tl[-1][1], label, 1.0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="valid")
    ap.add_argument("--corpus", default=str(ROOT / "corpus"))
    ap.add_argument("--cache", default=str(ROOT / "corpus" / "analysis-cache"))
    ap.add_argument("--grid", action="store_true", help="score every setting (dev only)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.grid and args.split == "test":
        sys.exit("bench_chords: settings are chosen on dev; --grid is refused on the test split")
    from musilingo.analysis.pipeline import rhythm

    corpus = Path(args.corpus)
    recs = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()
            if line.strip()]
    recs = [r for r in recs if r.get("split") == args.split and r["attributes"].get("chord_timeline")]
    if not recs:
        sys.exit(f"bench_chords: no {args.split} clips with a chord_timeline in {corpus}")
    clips, t0 = [], time.perf_counter()
    for i, rec in enumerate(recs, 1):
        fe = frontend(rec, corpus, Path(args.cache))
        clips.append((rec, fe, np.asarray(rhythm(fe)[1])))
        print(f"\r{i}/{len(recs)} clips measured", end="", file=sys.stderr, flush=True)
    print(f" ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    t = time.perf_counter()
    chosen = run(clips, chords.PARAMS)
    est_s = (time.perf_counter() - t) / len(clips)
    by_genre = {}  # the MMA style's broad genre: jazz and blues voice sevenths, pop triads
    for genre in sorted({r["attributes"].get("genre", "?") for r, _, _ in clips}):
        part = [c for c in clips if c[0]["attributes"].get("genre", "?") == genre]
        by_genre[genre] = {"clips": len(part), **run(part, chords.PARAMS)}
    by_drums = {}
    for name, has in (("drums", True), ("no drums", False)):
        part = [c for c in clips if bool(c[0]["attributes"].get("drums")) == has]
        if part:
            by_drums[name] = {"clips": len(part), **run(part, chords.PARAMS)}
    plain = run(clips, chords.ChordParams(vocabulary="majmin", harmonics=1, per_beat=False,
                                          bass_weight=0.0, self_prob=1 / 25))
    total, tonic = 0.0, dict.fromkeys(METRICS, 0.0)
    for rec, _, _ in clips:
        tl = rec["attributes"]["chord_timeline"]
        w = tl[-1][1] - tl[0][0]
        total += w
        for m, v in score(tl, tonic_triad(rec)).items():
            tonic[m] += w * v
    out = {"split": args.split, "clips": len(clips),
           "seconds_of_music": round(total, 1),
           "params": vars(chords.PARAMS),
           "estimate": chosen,
           "estimate_by_genre": by_genre,
           "estimate_by_drums": by_drums,
           "baseline_templates_framewise": plain,
           "baseline_tonic_triad_true_key": {m: round(v / total, 4) for m, v in tonic.items()},
           "estimate_seconds_per_clip": round(est_s, 4),
           "chord_labels_in_truth": sorted({c for r, _, _ in clips
                                            for _, _, c in r["attributes"]["chord_timeline"]})}
    example = example_clip()
    out["example"] = {**run([example], chords.PARAMS), "progression": chords.estimate_chords(
        example[1], example[2], chords.PARAMS).progression(12)}
    if args.grid:
        rows = []
        for combo in itertools.product(*GRID.values()):
            p = chords.ChordParams(**dict(zip(GRID, combo)))
            ex = run([example], p)
            rows.append({**dict(zip(GRID, combo)), **run(clips, p),
                         "example_majmin": ex["majmin"], "example_sevenths": ex["sevenths"]})
        rows.sort(key=lambda r: (-r["majmin"], -r["root"]))
        out["grid"] = rows
        for r in rows[:10]:
            print(r)
    print(json.dumps({k: v for k, v in out.items() if k != "grid"}, indent=1))
    path = Path(args.out or ROOT / "benchmarks" / "results" / f"chords-{args.split}.json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(path)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
