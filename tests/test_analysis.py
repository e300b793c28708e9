"""musilingo.analysis: measured facts on tiny generated audio and the shipped example clip.

Generated signals with known answers: a click track (tempo, beat times), a waltz pattern
(triple meter), cadences in D major and A minor (tonic and mode), noise (no clear key) and
silence (a clear error); the shipped example clip for musicnn tags; the summary line exactly;
``analyze_command`` exit codes and JSON. One librosa warm-up per session (numba), then every
analysis takes about a second.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musilingo.analysis.facts import Facts, Key, Loudness, Meter, Tag, Tags, Tempo

SR = 22050
EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "musilingo" / "assets" / "example.ogg"
pytest.importorskip("librosa")


def _tone(midi: float, dur: float, amp: float = 0.2, partials: int = 4) -> np.ndarray:
    t = np.arange(int(dur * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(amp / k * np.sin(2 * np.pi * f * k * t) for k in range(1, partials + 1) if f * k < SR / 2)
    env = np.minimum(1.0, t / 0.01) * np.exp(-2.5 * t)
    return (y * env).astype(np.float32)


def _click(amp: float, dur: float = 0.03, freq: float = 1500.0) -> np.ndarray:
    t = np.arange(int(dur * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.005)).astype(np.float32)


def _place(out: np.ndarray, x: np.ndarray, at_s: float) -> None:
    a = int(at_s * SR)
    n = min(len(x), len(out) - a)
    if n > 0:
        out[a:a + n] += x[:n]


def click_track(bpm: float, seconds: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    y = np.zeros(int(seconds * SR), np.float32)
    times = np.arange(0.5, seconds - 0.1, 60.0 / bpm)
    for t in times:
        _place(y, _click(0.5), t)
    return y, times


def waltz(bpm: float = 132.0, bars: int = 12) -> np.ndarray:
    """Oom-pah-pah: a bass note and a changing chord on beat 1, soft clicks on beats 2 and 3."""
    beat = 60.0 / bpm
    y = np.zeros(int((bars * 3 + 1) * beat * SR), np.float32)
    roots = [43, 48, 50, 43]  # G C D G (G major)
    for b in range(bars):
        t0 = 0.2 + 3 * b * beat
        root = roots[b % 4]
        _place(y, _tone(root, 3 * beat, 0.5), t0)
        _place(y, _click(0.6, freq=300.0), t0)
        for k in (1, 2):
            for iv in (12, 16, 19):
                _place(y, _tone(root + iv, 0.6 * beat, 0.06), t0 + k * beat)
    return y / np.abs(y).max() * 0.8


def cadences(tonic_midi: int, minor: bool, repeats: int = 4) -> np.ndarray:
    """i/I - iv/IV - V - i/I block chords with the root in the bass, 0.75 s each."""
    third = 3 if minor else 4
    chords = [(0, [0, third, 7]), (5, [5, 5 + third, 12]), (7, [7, 11, 14]), (0, [0, third, 7])]
    dur = 0.75
    y = np.zeros(int(repeats * len(chords) * dur * SR) + SR, np.float32)
    t = 0.1
    for _ in range(repeats):
        for root, notes in chords:
            _place(y, _tone(tonic_midi - 12 + root, dur, 0.4), t)
            for n in notes:
                _place(y, _tone(tonic_midi + 12 + n, dur, 0.15), t)
            t += dur
    return y / np.abs(y).max() * 0.8


@pytest.fixture(scope="module")
def analyze():
    from musilingo.analysis import analyze

    return lambda y: analyze(y, SR, with_tags=False)


def test_click_track_tempo_and_beats(analyze):
    y, clicks = click_track(120.0)
    facts = analyze(y)
    assert facts.tempo.bpm == pytest.approx(120.0, rel=0.03)
    beats = np.array(facts.tempo.beats)
    assert len(beats) >= 0.8 * len(clicks)
    # every tracked beat sits on a click (within 40 ms)
    assert np.all(np.min(np.abs(beats[:, None] - clicks[None, :]), axis=1) < 0.04)
    assert facts.meter.feel == "duple"


def test_waltz_is_triple(analyze):
    facts = analyze(waltz())
    assert facts.meter.signature == "3/4" and facts.meter.feel == "triple"
    assert facts.meter.beats_per_bar == 3
    assert facts.tempo.bpm == pytest.approx(132.0, rel=0.1)
    db = np.diff(facts.tempo.downbeats)
    assert np.median(db) == pytest.approx(3 * 60 / 132.0, rel=0.1)


@pytest.mark.parametrize("tonic_midi,minor,name", [(62, False, ("D", "major")),
                                                   (57, True, ("A", "minor"))])
def test_cadences_key(analyze, tonic_midi, minor, name):
    facts = analyze(cadences(tonic_midi, minor))
    assert (facts.key.tonic, facts.key.mode) == name
    assert facts.key.tonal and facts.key.confidence > 0.5


@pytest.mark.parametrize("tonic_midi,minor,labels,symbols", [
    (62, False, ("D:maj", "G:maj", "A:maj", "D:maj"), ["D", "G", "A", "D"]),
    (57, True, ("A:min", "D:min", "E:maj", "A:min"), ["Am", "Dm", "E", "Am"])])
def test_cadences_chords(analyze, tonic_midi, minor, labels, symbols):
    """The chords of i/I - iv/IV - V - i/I, 0.75 s each, read at the middle of every chord."""
    facts = analyze(cadences(tonic_midi, minor))
    segs = facts.chords.segments
    assert segs[0].start == 0.0 and all(a.end == b.start for a, b in pairwise(segs))
    right = 0
    for i in range(16):
        t = 0.1 + 0.75 * (i + 0.5)
        right += next(s.label for s in segs if s.start <= t < s.end) == labels[i % 4]
    assert right >= 14, [(s.start, s.end, s.label) for s in segs]
    assert facts.chords.progression(4) == symbols
    d = json.loads(facts.to_json())
    assert Facts.from_dict(d).chords == facts.chords


def test_sevenths_vocabulary_with_harmonic_templates_names_a_dominant_seventh():
    """G7 - C block chords (root in the bass): the sevenths vocabulary names G7, and its harmonic
    templates keep the C triad a triad (E's third partial sounds a B, which plain templates can
    read as Cmaj7)."""
    from musilingo.analysis import chords
    from musilingo.analysis.frontend import measure
    from musilingo.analysis.pipeline import rhythm

    y = np.zeros(int(9.8 * SR), np.float32)
    for i in range(6):
        t, (root, notes) = 0.2 + 1.5 * i, [(43, (55, 59, 62, 65)), (48, (60, 64, 67))][i % 2]
        _place(y, _tone(root, 1.5, 0.4), t)
        for n in notes:
            _place(y, _tone(n, 1.5, 0.15), t)
    fe = measure(y / np.abs(y).max() * 0.8, SR, notes=False, tags=False)
    beats = rhythm(fe)[1]
    sevenths = chords.ChordParams(vocabulary="sevenths", harmonics=6)
    assert chords.estimate_chords(fe, beats, sevenths).progression() == ["G7", "C"] * 3
    assert chords.estimate_chords(fe, beats, chords.ChordParams()).progression() == ["G", "C"] * 3
    with pytest.raises(ValueError, match="vocabulary"):
        chords.estimate_chords(fe, beats, chords.ChordParams(vocabulary="jazz"))


def test_noise_has_no_clear_key(analyze):
    y = np.random.default_rng(0).normal(0, 0.1, 8 * SR).astype(np.float32)
    facts = analyze(y)
    assert not facts.key.tonal and facts.key.confidence == 0.0
    assert "no clear key" in facts.summary()


def test_silence_and_too_short_are_errors():
    from musilingo.analysis import analyze

    with pytest.raises(ValueError, match="silent"):
        analyze(np.zeros(5 * SR, np.float32), SR)
    with pytest.raises(ValueError, match="too short"):
        analyze(np.full(SR // 2, 0.1, np.float32), SR)


def test_key_profiles_and_fold():
    from musilingo.analysis import key
    from musilingo.music import KEY_PROFILES, key_profile

    for name in KEY_PROFILES:  # each profile finds its own rotations
        for mode in ("major", "minor"):
            k = key.estimate_key(np.array(key_profile(name, mode, 9)), name)
            assert (k.tonic_pc, k.mode) == (9, mode)
    v = key.fold(np.ones(24), 36, bass_split=48, bass_weight=1.0)  # C2..B3, C2..B2 doubled
    assert v.tolist() == [3.0] * 12


def test_example_clip_tags_and_facts():
    from musilingo.analysis import analyze_file

    facts = analyze_file(EXAMPLE)  # truth (example.json): 96 bpm, 3/4, G major, piano, no drums
    names = [t.name for t in facts.tags.tags]
    assert "piano" in names
    assert not facts.tags.vocals
    assert facts.tempo.bpm == pytest.approx(96.0, rel=0.1)
    assert (facts.key.tonic, facts.key.mode) == ("G", "major")
    assert facts.summary().endswith("no vocals")
    # the example's 12 bars: G Em C D three times (scripts/make_example_clip.py)
    assert facts.chords.progression(12) == ["G", "Em", "C", "D"] * 3
    json.loads(facts.to_json())


def test_summary_exact():
    facts = Facts(
        duration_s=20.0,
        tempo=Tempo(96.4, 0.9, [0.5, 1.1], [0.5], 48.2),
        meter=Meter("3/4", "triple", 3, 0.7, 0.8),
        key=Key("G", "major", 0.65, True, 0.82, "temperley"),
        loudness=Loudness(-18.0, 3.0, -1.0, "steady"),
        tags=Tags([Tag("piano", "MTT", 0.9, 0.3), Tag("classical", "MTT", 0.6, 0.4),
                   Tag("no vocals", "MTT", 0.8, 0.5)], False, 0.9, 0.05),
    )
    assert facts.summary() == ("Measured: 96 bpm (sure), 3/4 (fairly sure), G major (fairly sure); "
                               "tags: piano, classical, no vocals")
    facts.key.tonal = False
    facts.tags = None
    assert facts.summary() == "Measured: 96 bpm (sure), 3/4 (fairly sure), no clear key"
    d = json.loads(facts.to_json())
    assert d["tempo"]["bpm"] == 96.4 and d["key"]["tonal"] is False


def test_analyze_command_exit_codes_and_json(tmp_path, capsys):
    from musilingo.cli.commands import analyze_command

    good = tmp_path / "clicks.wav"
    sf.write(good, click_track(100.0)[0], SR)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(3 * SR, np.float32), SR)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert analyze_command([str(good)], as_json=True, tags=False) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["file"] == str(good) and line["summary"].startswith("Measured: ")
    assert int(line["summary"].split()[1]) in (99, 100, 101)
    assert line["facts"]["tempo"]["bpm"] == pytest.approx(100.0, rel=0.03)
    code = analyze_command([str(silent), str(good), str(empty), str(tmp_path / "missing.mp3")],
                           tags=False)
    out, err = capsys.readouterr()
    assert code == 1
    assert str(good) in out and "Measured:" in out
    for bad, why in ((silent, "silent"), (empty, "empty"), (tmp_path / "missing.mp3", "no such")):
        assert any(str(bad) in ln and why in ln for ln in err.splitlines()), err


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, musilingo.analysis, musilingo.analysis.facts; "
            "print(any(m in sys.modules for m in ('librosa', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
