"""The rendered corpus: truth matches the written MIDI, splits by work, resume, determinism.

Renders a few seconds of audio per clip with the Debian fluidsynth/mma/abc2midi tools; skipped
where they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("music21")
pretty_midi = pytest.importorskip("pretty_midi")
sf = pytest.importorskip("soundfile")

from musilingo.data import mma_styles, render  # noqa: E402
from musilingo.data.render import catalogue, pool, timeouts  # noqa: E402
from musilingo.data.render.command import render_command  # noqa: E402
from musilingo.data.manifest import read_manifest  # noqa: E402
from musilingo.errors import ConfigError  # noqa: E402
from musilingo.music import pitch_class, tonic_name  # noqa: E402

TOOLS = ("fluidsynth", "mma", "abc2midi")
needs_tools = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS)
    or not all(os.path.isfile(s) for s in render.DEFAULT_SOUNDFONTS),
    reason="needs fluidsynth, mma, abc2midi and the Debian GM soundfonts")
SHORT = (3.0, 4.0)  # seconds per test clip
TIMID = render.DEFAULT_SOUNDFONTS[1]  # TimGM6mb: small, loads fast


def _options(tmp: Path, **kw) -> render.RenderOptions:
    base = dict(out_dir=tmp, num_clips=4, seed=3, workers=1, clip_seconds=SHORT,
                progress=False, keep_midi=True, soundfonts=(TIMID,))
    base.update(kw)
    return render.RenderOptions(**base)


def _midi_truth(pm, t0: float, t1: float) -> dict:
    """What the written MIDI says about [t0, t1]: tempo, meter, instruments, drums."""
    _, qpms = pm.get_tempo_changes()
    ts = [x for x in pm.time_signature_changes if x.time <= t0 + 1e-6][-1]
    names, drums = set(), False
    for inst in pm.instruments:
        if any(n.start < t1 and n.end > t0 for n in inst.notes):
            if inst.is_drum:
                drums = True
            else:
                names.add(pretty_midi.program_to_instrument_name(inst.program))
    return {"qpm": float(qpms[0]), "n_tempi": len(qpms),
            "meter": f"{ts.numerator}/{ts.denominator}", "instruments": names, "drums": drums}


def _check_against_midi(rec: dict, out: Path) -> tuple[dict, object]:
    a = rec["attributes"]
    pm = pretty_midi.PrettyMIDI(str(out / "midi" / f"{rec['id']}.mid"))
    t0 = a["clip_start_s"]
    truth = _midi_truth(pm, t0, t0 + rec["duration"])
    assert truth["n_tempi"] == 1
    assert a["tempo_qpm"] == pytest.approx(truth["qpm"], abs=0.1)
    assert a["meter"] == truth["meter"]
    assert set(a["instruments"]) == truth["instruments"]
    assert a["drums"] == truth["drums"]
    for name in a["instruments"]:
        assert name in pretty_midi.constants.INSTRUMENT_MAP
    info = sf.info(str(out / rec["audio"]))
    assert info.samplerate == render.SAMPLE_RATE and info.channels == 1
    assert info.duration == pytest.approx(rec["duration"], abs=0.01)
    assert SHORT[0] - 0.01 <= rec["duration"] <= SHORT[1] + 0.01
    audio, _ = sf.read(str(out / rec["audio"]))
    assert np.sqrt(np.mean(audio**2)) > render.MIN_CLIP_RMS
    assert rec["caption"] and rec["qa"]
    return a, pm


@needs_tools
def test_bach_chorale_matches_midi(tmp_path):
    path = next(p for p in catalogue._m21_catalogue()["bach"] if Path(p).stem == "bwv269")
    spec = render.ClipSpec(index=0, clip_id="bach-test", source="music21", collection="bach",
                           group="bach", work_id="bach/bwv269", split_key="bach/bwv269",
                           path=path, soundfont=TIMID, clip_len=3.5, seed=11)
    rec = render.render_clip(spec, _options(tmp_path))
    a, pm = _check_against_midi(rec, tmp_path)
    assert a["meter"] == "3/4"  # BWV 269 is in 3/4
    assert a["num_parts"] == 4 and a["drums"] is False
    assert a["composer"] == "Johann Sebastian Bach"
    # Key: G major in the source, transposed with the notes (MIDI key signature agrees).
    tonic_pc = pitch_class(a["key_tonic"])
    assert (a["key_mode"], tonic_pc) == ("major", (7 + a["transpose"]) % 12)
    assert pm.key_signature_changes[0].key_number == (7 + a["transpose"]) % 12


@needs_tools
def test_mma_groove_matches_midi(tmp_path):
    spec = render.ClipSpec(index=0, clip_id="mma-test", source="mma", collection="waltz",
                           group="waltz", work_id="mma/waltz", split_key="mma/waltz",
                           style_file="waltz", groove="Waltz", soundfont=TIMID, clip_len=3.5,
                           seed=5)
    rec = render.render_clip(spec, _options(tmp_path))
    a, pm = _check_against_midi(rec, tmp_path)
    assert a["meter"] == "3/4" and a["drums"] is True and a["style"] == "waltz"
    # MMA's humanisation is seeded from the clip: a second render is the same audio, byte for byte
    again = render.render_clip(spec, _options(tmp_path / "again"))
    assert (tmp_path / "again" / again["audio"]).read_bytes() == (tmp_path / rec["audio"]).read_bytes()
    lo, hi = next(s for s in mma_styles.MMA_STYLES if s.file == "waltz").qpm
    assert lo <= a["tempo_qpm"] <= hi
    kn = pm.key_signature_changes[0].key_number
    mode = "minor" if kn >= 12 else "major"
    assert (a["key_tonic"], a["key_mode"]) == (tonic_name(kn % 12, mode), mode)
    # Chord truth: segments tile the clip, and in each the accompaniment sounds the chord's
    # root and third (a timeline shifted by a bar or off the MIDI's clock would miss them)
    tl = a["chord_timeline"]
    assert tl[0][0] == 0.0 and tl[-1][1] == pytest.approx(rec["duration"], abs=0.01)
    assert all(x[1] == pytest.approx(y[0]) for x, y in zip(tl, tl[1:]))
    t0 = a["clip_start_s"]
    for start, end, label in (x for x in tl if x[1] - x[0] > 0.2):  # a sliver may hold no note
        root, quality = label.split(":")
        third = {"maj": 4, "maj7": 4, "7": 4, "maj6": 4, "min": 3, "min7": 3, "hdim7": 3}[quality]
        sounding = {n.pitch % 12 for i in pm.instruments if not i.is_drum for n in i.notes
                    if n.start < t0 + end - 0.05 and n.end > t0 + start + 0.05}
        assert {pitch_class(root), (pitch_class(root) + third) % 12} <= sounding, (label, sounding)


@needs_tools
@pytest.mark.parametrize("style_file, groove, meter", [("vienesewaltz", "VieneseWaltz1Sus", "3/4"),
                                                       ("68march", "68March", "6/8")])
def test_mma_bar_and_beat_truth_follow_the_bars_mma_lays(tmp_path, style_file, groove, meter):
    """Two stdlib styles label their bars wrongly in the MIDI (vienesewaltz: 3-beat bars as 4/4;
    68march: 2 dotted-quarter beats written as MIDI quarters, labelled 6/8). The truth must count
    the style's own beats: its tempo in the style's beats per minute, one bar every ``Time`` of
    them, and the chords changing on those bars."""
    style = next(s for s in mma_styles.MMA_STYLES if s.file == style_file)
    spec = render.ClipSpec(index=0, clip_id=f"{style_file}-test", source="mma",
                           collection=style_file, group=style_file, work_id=f"mma/{style_file}",
                           split_key=f"mma/{style_file}", style_file=style_file, groove=groove,
                           soundfont=TIMID, clip_len=3.5, seed=7)
    rec = render.render_clip(spec, _options(tmp_path))
    a, pm = _check_against_midi(rec, tmp_path)
    assert a["meter"] == meter
    assert style.qpm[0] <= a["tempo_bpm"] <= style.qpm[1]  # MMA's Tempo counts the style's beats
    bar = mma_styles.beats_per_bar(style) * 60.0 / a["tempo_bpm"]
    assert np.diff(pm.get_downbeats()[:4]) == pytest.approx([bar] * 3, abs=1e-3)
    # the chord truth changes only on those bars (MMA's first bar starts at 0)
    t0 = a["clip_start_s"]
    for start, _, _ in a["chord_timeline"][1:]:
        assert (start + t0) / bar == pytest.approx(round((start + t0) / bar), abs=1e-3)


@needs_tools
def test_abc_tune_matches_midi(tmp_path):
    path = next(p for p, _, _ in catalogue._abc_catalogue()["irish"]
                if Path(p).name == "PaddyThePiperReel.abc")
    spec = render.ClipSpec(index=0, clip_id="abc-test", source="abc", collection="ryansMammoth",
                           group="irish", work_id="ryansMammoth/PaddyThePiperReel/0",
                           split_key="tune:paddy the piper", path=path, tune=0, soundfont=TIMID,
                           clip_len=3.5, seed=2)
    rec = render.render_clip(spec, _options(tmp_path))
    a, _ = _check_against_midi(rec, tmp_path)
    assert a["meter"] == "2/4" and a["dance_type"] == "reel" and a["drums"] is False
    assert a["lead_instrument"] == a["instruments"][0]
    lo, hi = render.DANCE_QPM["reel"]
    assert lo <= a["tempo_qpm"] <= hi
    assert "key_tonic" not in a  # K: G but the tune ends on E: no key is claimed


@needs_tools
def test_corpus_resume_and_determinism(tmp_path):
    opts = dict(num_clips=4, seed=3, workers=1, sources=("mma", "abc"), clip_seconds=SHORT,
                soundfonts=(TIMID,), progress=False, keep_midi=True)
    manifest = render.render_corpus(tmp_path, **opts)
    recs = read_manifest(manifest)
    assert 3 <= len(recs) <= 4  # a failure is logged, not fatal
    for r in recs:
        _check_against_midi(json.loads(
            (tmp_path / "state" / "done" / f"{r.id}.json").read_text()), tmp_path)
    before = {r.id: (tmp_path / "state" / "done" / f"{r.id}.json").read_text() for r in recs}
    victim = recs[1].id
    manifest.unlink()
    (tmp_path / "state" / "done" / f"{victim}.json").unlink()
    mtimes = {rid: (tmp_path / "state" / "done" / f"{rid}.json").stat().st_mtime_ns
              for rid in before if rid != victim}
    manifest2 = render.render_corpus(tmp_path, **{**opts, "workers": 2})
    after = {r.id for r in read_manifest(manifest2)}
    assert after == set(before)
    for rid, m in mtimes.items():  # finished clips were not rendered again
        assert (tmp_path / "state" / "done" / f"{rid}.json").stat().st_mtime_ns == m
    # the re-rendered clip has exactly the same record (deterministic for the seed)
    assert (tmp_path / "state" / "done" / f"{victim}.json").read_text() == before[victim]
    # a resumed corpus gets the current generator's text, not that of the run that rendered it
    # (the 4/2 gloss was fixed after corpora had been rendered with the old one)
    kept = recs[0].id
    stale = json.loads(before[kept])
    stale["caption"], stale["qa"][0]["answer"] = "An old caption.", "An old answer."
    # ... and the current family table's families (GM 110 "Fiddle" was once ethnic)
    stale["attributes"]["instrument_families"] = ["an old family"]
    (tmp_path / "state" / "done" / f"{kept}.json").write_text(json.dumps(stale))
    fresh = {r.id: r for r in read_manifest(render.render_corpus(tmp_path, **opts))}
    assert fresh[kept].caption == json.loads(before[kept])["caption"] != "An old caption."
    assert fresh[kept].qa[0].answer == json.loads(before[kept])["qa"][0]["answer"]
    assert fresh[kept].attributes["instrument_families"] == \
        json.loads(before[kept])["attributes"]["instrument_families"]


@needs_tools
def test_render_one_split_then_all(tmp_path):
    """--splits renders only that split's clips, with the ids of the full plan; a full render
    afterwards resumes from them and the manifest lists every split."""
    opts = dict(num_clips=40, seed=0, workers=1, sources=("mma",), clip_seconds=SHORT,
                soundfonts=(TIMID,), progress=False)
    plan = render.plan_clips(render.RenderOptions(out_dir=tmp_path, **opts))
    split_of = {s.clip_id: render.split_for(s.split_key) for s in plan}
    wanted = {c for c, sp in split_of.items() if sp != "train"}
    assert wanted and len(wanted) < len(plan)
    render.render_corpus(tmp_path, splits=("valid", "test"), **opts)
    done = {p.stem for p in (tmp_path / "state" / "done").glob("*.json")}
    failed = {p.stem for p in (tmp_path / "state" / "failed").glob("*.json")}
    assert done | failed == wanted
    mtimes = {c: (tmp_path / "state" / "done" / f"{c}.json").stat().st_mtime_ns for c in done}
    recs = read_manifest(render.render_corpus(tmp_path, **{**opts, "num_clips": 12}))
    # a later render resumes (same ids, not rendered again) and lists every split's clips
    assert {r.id for r in recs} >= {c for c in done if int(c[:6]) < 12}
    assert any(split_of[r.id] == "train" for r in recs)
    for c, m in mtimes.items():
        assert (tmp_path / "state" / "done" / f"{c}.json").stat().st_mtime_ns == m
    with pytest.raises(ConfigError, match="splits"):
        render.RenderOptions(out_dir=tmp_path, splits=("dev",))


@needs_tools
def test_render_only_listed_ids(tmp_path):
    """--only renders just the listed planned clips (the grounded subset rendered alone); an id
    the plan does not hold is refused before anything renders, naming the likely cause."""
    opts = dict(num_clips=12, seed=0, workers=1, sources=("mma",), clip_seconds=SHORT,
                soundfonts=(TIMID,), progress=False)
    plan = render.plan_clips(render.RenderOptions(out_dir=tmp_path, **opts))
    pick = [plan[1].clip_id, plan[5].clip_id]
    recs = read_manifest(render.render_corpus(tmp_path, only=pick, **opts))
    failed = {p.stem for p in (tmp_path / "state" / "failed").glob("*.json")}
    assert {r.id for r in recs} | failed == set(pick)
    ids = tmp_path / "ids.txt"
    ids.write_text("999999-not-planned\n")
    with pytest.raises(ConfigError, match="not in this plan of 12 clips"):
        render_command(str(tmp_path / "other"), clips=12, sources="mma", only=str(ids),
                       soundfonts=TIMID, quiet=True)
    assert not (tmp_path / "other" / "audio").exists()
    ids.write_text("\n")
    with pytest.raises(ConfigError, match="holds no clip ids"):
        render_command(str(tmp_path / "other"), clips=12, sources="mma", only=str(ids), quiet=True)


def test_plan_is_deterministic_and_splits_by_work(tmp_path):
    opts = render.RenderOptions(out_dir=tmp_path, num_clips=3000, seed=0, progress=False)
    plan = render.plan_clips(opts)
    assert plan == render.plan_clips(opts)
    assert render.plan_clips(render.RenderOptions(out_dir=tmp_path, num_clips=50, seed=0)) \
        == plan[:50]
    assert plan[:50] != render.plan_clips(render.RenderOptions(out_dir=tmp_path, num_clips=50,
                                                               seed=1))
    assert len({s.clip_id for s in plan}) == len(plan)
    splits_of_work, splits_of_key = defaultdict(set), defaultdict(set)
    for s in plan:
        splits_of_work[s.work_id].add(render.split_for(s.split_key))
        splits_of_key[s.split_key].add(render.split_for(s.split_key))
    assert all(len(v) == 1 for v in splits_of_work.values())
    assert all(len(v) == 1 for v in splits_of_key.values())
    counts = defaultdict(int)
    for key in splits_of_key:
        counts[render.split_for(key)] += 1
    total = sum(counts.values())
    assert 0.74 < counts["train"] / total < 0.86
    assert counts["valid"] > 0 and counts["test"] > 0
    assert {s.source for s in plan} == {"music21", "mma", "abc"}
    assert len({s.groove for s in plan if s.source == "mma"}) > 100


def test_failure_is_logged_not_fatal(tmp_path):
    opts = _options(tmp_path)
    (tmp_path / "state" / "done").mkdir(parents=True)
    (tmp_path / "state" / "failed").mkdir(parents=True)
    spec = render.ClipSpec(index=0, clip_id="broken", source="music21", collection="bach",
                           group="bach", work_id="bach/none", split_key="bach/none",
                           path=str(tmp_path / "missing.mxl"), soundfont=TIMID, clip_len=3.5)
    cid, ok, msg = pool._work((spec, opts))
    assert (cid, ok) == ("broken", False) and msg
    assert json.loads((tmp_path / "state" / "failed" / "broken.json").read_text())["error"]


def test_options_validate(tmp_path):
    with pytest.raises(ConfigError):
        render.RenderOptions(out_dir=tmp_path, soundfonts=("/x/MuseScore_General.sf2",))
    with pytest.raises(ConfigError):
        render.RenderOptions(out_dir=tmp_path, sources=("youtube",))
    with pytest.raises(ConfigError):
        render.RenderOptions(out_dir=tmp_path, clip_seconds=(30.0, 10.0))


@pytest.mark.parametrize("qpm,meter,bpm", [(120, (4, 4), 120), (180, (6, 8), 120),
                                           (200, (2, 2), 100), (90, (3, 8), 60),
                                           (100, (3, 4), 100)])
def test_beat_bpm(qpm, meter, bpm):
    assert render.beat_bpm(qpm, meter) == pytest.approx(bpm)


def test_a_timed_out_clip_is_tried_once_more_with_a_longer_limit(tmp_path, monkeypatch):
    opts = _options(tmp_path)
    (tmp_path / "state" / "done").mkdir(parents=True)
    (tmp_path / "state" / "failed").mkdir(parents=True)
    spec = render.ClipSpec(index=0, clip_id="slow", source="music21", collection="bach",
                           group="bach", work_id="bach/slow", split_key="bach/slow",
                           path="unused.mxl", soundfont=TIMID, clip_len=3.5)
    limits = []

    def slow_once(s, o):
        limits.append(o.timeout_s)
        if len(limits) == 1:
            raise timeouts._ClipTimeout("fluidsynth timed out after 60 s")
        return {"id": s.clip_id}

    monkeypatch.setattr(pool, "render_clip", slow_once)
    assert pool._work((spec, opts)) == ("slow", True, "")
    assert limits == [opts.timeout_s, opts.timeout_s * render.TIMEOUT_RETRY_FACTOR]
    assert json.loads((tmp_path / "state" / "done" / "slow.json").read_text()) == {"id": "slow"}

    def always_slow(s, o):
        limits.append(o.timeout_s)
        raise timeouts._ClipTimeout(f"fluidsynth timed out after {o.timeout_s:.0f} s")

    limits.clear()
    monkeypatch.setattr(pool, "render_clip", always_slow)
    spec2 = replace(spec, clip_id="slower")
    cid, ok, msg = pool._work((spec2, opts))
    assert (cid, ok) == ("slower", False) and "timed out after 120 s" in msg and len(limits) == 2

    def broken(s, o):
        limits.append(o.timeout_s)
        raise ValueError("MIDI has no notes")

    limits.clear()
    monkeypatch.setattr(pool, "render_clip", broken)
    spec3 = replace(spec, clip_id="empty")
    assert pool._work((spec3, opts))[1] is False and len(limits) == 1  # not a timeout: no retry
