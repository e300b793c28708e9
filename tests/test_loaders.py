"""Loaders for MusicCaps, MusicInstruct, MusicQA and LP-MusicCaps-MSD into manifest Records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musilingo.data.loaders import (
    NPY_SAMPLE_RATE,
    SkippedAudioWarning,
    convert_command,
    detect_format,
    infer_length,
    load_dataset,
    load_lpmusiccaps,
    load_musiccaps,
    load_musicinstruct,
    load_musicqa,
    load_npy_audio,
)
from musilingo.data.manifest import read_manifest
from musilingo.errors import AudioError, ConfigError, ManifestError

# The first 30 rows of MusicCaps (CC-BY-SA 4.0, Google; see tests/fixtures/README.md)
MUSICCAPS = Path(__file__).resolve().parent / "fixtures" / "musiccaps-excerpt.csv"


def _wav(path: Path, seconds: float = 0.1, sr: int = 8000) -> None:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)


def _first_ytids(n: int) -> list[str]:
    with open(MUSICCAPS, newline="") as f:
        return [row["ytid"] for _, row in zip(range(n), csv.DictReader(f))]


def _small_musiccaps(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "mc.csv"
    cols = ["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list", "caption",
            "author_id", "is_balanced_subset", "is_audioset_eval"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({"start_s": 30, "end_s": 40, "audioset_positive_labels": "/m/04rlf",
                        "aspect_list": "['rock', 'loud']", "caption": "A loud rock song.",
                        "author_id": 1, "is_balanced_subset": "False",
                        "is_audioset_eval": "False", **r})
    return path


# --- MusicCaps ---------------------------------------------------------------------------------


def test_musiccaps_excerpt_counts_and_fields():
    recs = load_dataset(MUSICCAPS, check_audio=False)
    assert len(recs) == 30
    assert sum(r.split == "test" for r in recs) == 17
    assert sum(r.split == "train" for r in recs) == 30 - 17
    r = recs[0]
    assert r.id == "-0Gj8-vB1q4" and r.source == "musiccaps" and r.duration == 10.0
    assert r.caption.startswith("The low quality recording features a ballad song")
    assert r.extra["aspect_list"][:2] == ["low quality", "sustained strings melody"]
    assert r.extra["audioset_positive_labels"] == ["/m/0140xf", "/m/02cjck", "/m/04rlf"]
    assert r.extra["is_balanced_subset"] is False and r.extra["author_id"] == 4
    assert r.audio == str(MUSICCAPS.parent / "-0Gj8-vB1q4.wav")
    assert detect_format(MUSICCAPS) == "musiccaps"


def test_musiccaps_audio_join_missing_error_and_skip(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    ids = _first_ytids(3)
    _wav(audio / f"{ids[0]}.wav")
    np.save(audio / f"{ids[1]}.npy", np.zeros(100, np.float32))
    _wav(audio / f"{ids[2]}.flac")  # any decodable extension is found
    # missing: listed in one error, with the count, before anything else happens
    with pytest.raises(ManifestError) as e:
        load_dataset(MUSICCAPS, audio_dir=audio)
    msg = str(e.value)
    assert "27 of 30 audio files are missing" in msg and "... and 7 more" in msg
    assert "--skip-missing" in msg
    with pytest.warns(SkippedAudioWarning, match="skipped 27 of 30"):
        recs = load_dataset(MUSICCAPS, audio_dir=audio, skip_missing=True)
    assert [r.id for r in recs] == ids
    assert recs[0].audio.endswith(".wav") and recs[2].audio.endswith(".flac")
    assert recs[1].audio.endswith(".npy")
    assert recs[1].extra["npy_sample_rate"] == NPY_SAMPLE_RATE
    assert "npy_sample_rate" not in recs[0].extra


def test_musiccaps_wav_preferred_over_npy(tmp_path):
    path = _small_musiccaps(tmp_path, [{"ytid": "a"}, {"ytid": "b", "is_audioset_eval": "True"}])
    _wav(tmp_path / "a.wav")
    np.save(tmp_path / "a.npy", np.zeros(10, np.float32))
    np.save(tmp_path / "b.npy", np.zeros(10, np.float32))
    recs = load_musiccaps(path, npy_sample_rate=24000)
    assert recs[0].audio == str(tmp_path / "a.wav")
    assert recs[1].audio == str(tmp_path / "b.npy") and recs[1].extra["npy_sample_rate"] == 24000
    assert [r.split for r in recs] == ["train", "test"]


@pytest.mark.parametrize("row, problem", [
    ({"ytid": ""}, "empty 'ytid'"),
    ({"ytid": "x", "is_audioset_eval": "maybe"}, "'is_audioset_eval' must be True or False"),
    ({"ytid": "x", "start_s": "abc"}, "'start_s' must be a number"),
    ({"ytid": "x", "aspect_list": "['unclosed"}, "'aspect_list' is not a valid list"),
    ({"ytid": "x", "caption": "  "}, "empty 'caption'"),
])
def test_musiccaps_malformed_rows_name_the_line(tmp_path, row, problem):
    path = _small_musiccaps(tmp_path, [{"ytid": "ok"}, row])
    with pytest.raises(ManifestError) as e:
        load_musiccaps(path)
    assert f"{path}:3" in str(e.value) and problem in str(e.value)


def test_musiccaps_missing_column_and_duplicate(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ytid,caption\nabc,hello\n")
    with pytest.raises(ManifestError, match="lacks column.*is_audioset_eval"):
        load_musiccaps(bad)
    dup = _small_musiccaps(tmp_path, [{"ytid": "a"}, {"ytid": "a"}])
    with pytest.raises(ManifestError, match=r"mc.csv:3: duplicate ytid 'a' \(first at .*:2\)"):
        load_musiccaps(dup)


# --- MusicInstruct -----------------------------------------------------------------------------


def _mi_entry(ytid, q, a, eval_=False, **kw):
    return {"ytid": ytid, "sampling_rate": 48000, "is_audioset_eval": eval_, "question": q,
            "answer": a, **kw}


def test_musicinstruct_groups_by_ytid_and_infers_length(tmp_path):
    long_answer = ("This is a slow ballad with a soft female voice over sustained strings and a "
                   "mellow piano. The recording quality is low. It sounds sad and soulful, like "
                   "something you would hear at a Sunday service in a small church with friends.")
    data = {"QA": [
        _mi_entry("y1", "What is the mood?", "Sad and soulful."),
        _mi_entry("y2", "Describe the music.", long_answer, eval_=True),
        _mi_entry("y1", "Describe it in detail.", long_answer),
        _mi_entry("y1", "Empty?", ""),  # dropped with a warning
    ]}
    path = tmp_path / "MusicInstruct.json"
    path.write_text(json.dumps(data))
    _wav(tmp_path / "y1.wav")
    np.save(tmp_path / "y2.npy", np.zeros(10, np.float32))
    with pytest.warns(UserWarning, match="dropped 1 Q&A"):
        recs = load_dataset(path)
    assert detect_format(path) == "musicinstruct"
    by = {r.id: r for r in recs}
    assert [q.length for q in by["y1"].qa] == ["short", "long"]
    assert by["y1"].split == "train" and by["y2"].split == "test"
    assert by["y2"].extra["npy_sample_rate"] == 48000 and by["y2"].source == "musicinstruct"
    with pytest.warns(UserWarning):
        short = load_musicinstruct(path, subset="short")
    assert [r.id for r in short] == ["y1"] and len(short[0].qa) == 1


def test_musicinstruct_length_from_entry_file_and_name(tmp_path):
    data = {"QA": [_mi_entry("y1", "Q1?", "A very short answer.", type="long"),
                   _mi_entry("y1", "Q2?", "Also short.")]}
    p = tmp_path / "mi.json"
    p.write_text(json.dumps(data))
    recs = load_musicinstruct(p)
    assert [q.length for q in recs[0].qa] == ["long", "short"]  # entry field, then inferred
    p2 = tmp_path / "MusicInstruct_long.json"
    p2.write_text(json.dumps({"QA": [_mi_entry("y1", "Q?", "Short.")]}))
    assert load_musicinstruct(p2)[0].qa[0].length == "long"  # file name says long
    p3 = tmp_path / "mi3.json"
    p3.write_text(json.dumps({"type": "short", "QA": [_mi_entry("y1", "Q?", "x " * 80)]}))
    assert load_musicinstruct(p3)[0].qa[0].length == "short"  # top-level key


@pytest.mark.parametrize("data, problem", [
    ({"qa": []}, "expected a JSON object with a list under 'QA'"),
    ({"QA": [_mi_entry("y1", "Q?", "A."), "oops"]}, "entry QA[1]: expected a JSON object"),
    ({"QA": [{"ytid": "y", "question": "Q?", "answer": 3, "is_audioset_eval": False}]},
     "entry QA[0]: field 'answer' must be a string"),
    ({"QA": [{"ytid": "y", "question": "Q?", "answer": "A."}]},
     "entry QA[0]: missing field 'is_audioset_eval'"),
    ({"QA": [_mi_entry("y", "Q?", "A."), _mi_entry("y", "Q2?", "B.", eval_=True)]},
     "entry QA[1]: is_audioset_eval of 'y' disagrees"),
])
def test_musicinstruct_malformed(tmp_path, data, problem):
    p = tmp_path / "mi.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ManifestError) as e:
        load_musicinstruct(p)
    assert str(p) in str(e.value) and problem in str(e.value)


def test_invalid_json_names_line(tmp_path):
    p = tmp_path / "mi.json"
    p.write_text('{"QA": [\n {"ytid": "a",,}\n]}')
    with pytest.raises(ManifestError, match=r"mi.json: not valid JSON \(line 2"):
        load_dataset(p)


# --- MusicQA -----------------------------------------------------------------------------------


def test_musicqa_pairs_grouping_and_split(tmp_path):
    data = [
        {"audio_name": "012542.wav", "conversation": [
            {"from": "human", "value": "What instruments are playing?"},
            {"from": "gpt", "value": "A piano and a violin."},
            {"from": "human", "value": "What is the tempo?"},
            {"from": "gpt", "value": "Slow."}]},
        {"audio_name": "012542.wav", "conversation": [
            {"from": "human", "value": "Is there singing?"}, {"from": "gpt", "value": "No."}]},
        {"audio_name": "000001.wav", "conversation": [
            {"from": "human", "value": "Genre?"}, {"from": "gpt", "value": "Jazz."}]},
    ]
    p = tmp_path / "MusicQA_EvalData.json"
    p.write_text(json.dumps(data))
    audio = tmp_path / "audio"
    audio.mkdir()
    _wav(audio / "012542.wav")
    np.save(audio / "000001.npy", np.zeros(10, np.float32))  # same stem, other extension
    recs = load_dataset(p, audio_dir=audio)
    assert detect_format(p) == "musicqa"
    assert [r.id for r in recs] == ["012542", "000001"]
    assert [q.question for q in recs[0].qa] == ["What instruments are playing?",
                                                "What is the tempo?", "Is there singing?"]
    assert {r.split for r in recs} == {"test"}  # "Eval" in the file name
    assert recs[1].audio.endswith("000001.npy") and recs[0].extra["audio_name"] == "012542.wav"
    assert load_musicqa(p, audio_dir=audio, split="train")[0].split == "train"


@pytest.mark.parametrize("conv, problem", [
    ([{"from": "gpt", "value": "A."}], "turn 0: a gpt turn with no human question"),
    ([{"from": "human", "value": "Q?"}], "the last human turn has no gpt answer"),
    ([{"from": "robot", "value": "Q?"}], "turn 0: unknown speaker 'robot'"),
    ([{"from": "human", "value": "Q?"}, {"from": "human", "value": "Q2?"}],
     "turn 1: two human turns in a row"),
    ([{"from": "human"}], "turn 0: field 'value' must be a string (missing)"),
    ("hello", "'conversation' must be a non-empty list"),
])
def test_musicqa_malformed(tmp_path, conv, problem):
    p = tmp_path / "musicqa.json"
    p.write_text(json.dumps([{"audio_name": "a.wav", "conversation": [
        {"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]},
        {"audio_name": "b.wav", "conversation": conv}]))
    with pytest.raises(ManifestError) as e:
        load_musicqa(p, split="train")
    assert "entry [1]" in str(e.value) and problem in str(e.value)


# --- LP-MusicCaps-MSD --------------------------------------------------------------------------

LP_ROWS = [
    {"track_id": "TRAAAAW128F429D538", "title": "Song A", "artist_name": "Artist",
     "release": "Album", "year": 2001, "tag": ["rock", "guitar"],
     "caption_writing": "A rock song with loud guitars.", "caption_summary": "Rock with guitars.",
     "caption_paraphrase": "Loud guitars drive this rock tune.",
     "caption_attribute_prediction": "Rock, guitar, energetic.", "path": "3/0/4/TRAAAAW128F429D538.mp3"},
    {"track_id": "TRAAABD128F429CF47", "title": "Song B", "artist_name": "Other",
     "release": "Single", "year": 1999, "tag": ["jazz"],
     "caption_writing": "A smooth jazz piece.", "caption_summary": "Smooth jazz.",
     "caption_paraphrase": "Jazz that is smooth.",
     "caption_attribute_prediction": "Jazz, saxophone.", "path": "1/2/3/TRAAABD128F429CF47.mp3"},
]


def _lp_audio(root: Path) -> None:
    (root / "3/0/4").mkdir(parents=True)
    (root / "1/2/3").mkdir(parents=True)
    _wav(root / "3/0/4/TRAAAAW128F429D538.wav")  # same path, another extension
    np.save(root / "1/2/3/TRAAABD128F429CF47.npy", np.zeros(10, np.float32))


@pytest.mark.parametrize("kind", ["json", "jsonl", "csv"])
def test_lpmusiccaps_formats(tmp_path, kind):
    audio = tmp_path / "audio"
    _lp_audio(audio)
    p = tmp_path / f"lp_msd_train.{kind}"
    if kind == "json":
        p.write_text(json.dumps(LP_ROWS))
    elif kind == "jsonl":
        p.write_text("\n".join(json.dumps(r) for r in LP_ROWS) + "\n")
    else:
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, list(LP_ROWS[0]))
            w.writeheader()
            for r in LP_ROWS:
                w.writerow({**r, "tag": str(r["tag"])})
    assert detect_format(p) == "lpmusiccaps"
    recs = load_dataset(p, audio_dir=audio)
    assert [r.id for r in recs] == ["TRAAAAW128F429D538", "TRAAABD128F429CF47"]
    assert recs[0].caption == "A rock song with loud guitars." and recs[0].split == "train"
    assert recs[0].extra["tag"] == ["rock", "guitar"] and recs[0].audio.endswith(".wav")
    assert recs[0].extra["caption_summary"] == "Rock with guitars."
    assert recs[1].audio.endswith(".npy")
    summ = load_dataset(p, audio_dir=audio, caption_field="caption_summary")
    assert summ[1].caption == "Smooth jazz."


def test_lpmusiccaps_bad_caption_field_and_rows(tmp_path):
    p = tmp_path / "lp.json"
    p.write_text(json.dumps(LP_ROWS))
    with pytest.raises(ConfigError, match="caption_field must be one of"):
        load_lpmusiccaps(p, caption_field="caption")
    rows = [LP_ROWS[0], {k: v for k, v in LP_ROWS[1].items() if k != "caption_writing"}]
    p.write_text(json.dumps(rows))
    with pytest.raises(ManifestError, match=r"entry \[1\]: field 'caption_writing' must be a "
                                            r"string \(missing\)"):
        load_lpmusiccaps(p)
    jl = tmp_path / "lp.jsonl"
    jl.write_text(json.dumps(LP_ROWS[0]) + "\n{not json\n")
    with pytest.raises(ManifestError, match=r"lp.jsonl:2: not valid JSON"):
        load_lpmusiccaps(jl)


# --- auto-detection, conversion, npy ------------------------------------------------------------


def test_unknown_format_is_clear(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ManifestError, match="cannot tell the dataset format"):
        load_dataset(p)
    with pytest.raises(ConfigError, match="unknown dataset format"):
        load_dataset(p, format="mp3")
    with pytest.raises(ManifestError, match="dataset file not found"):
        load_dataset(tmp_path / "nope.json")


def test_convert_command_writes_manifest(tmp_path, capsys):
    path = _small_musiccaps(tmp_path, [{"ytid": "a"}, {"ytid": "b", "is_audioset_eval": "True"},
                                       {"ytid": "c"}])
    audio = tmp_path / "clips"
    audio.mkdir()
    _wav(audio / "a.wav")
    _wav(audio / "b.wav")
    out = tmp_path / "out" / "musiccaps.jsonl"
    with pytest.raises(ManifestError, match="1 of 3 audio files are missing:\n  c: "):
        convert_command(str(path), str(out), audio_dir=str(audio))
    assert not out.exists()
    assert convert_command(str(path), str(out), audio_dir=str(audio), skip_missing=True) == 0
    captured = capsys.readouterr()
    assert "skipped 1 of 3" in captured.err and "2 records" in captured.out
    recs = read_manifest(out)
    assert [r.id for r in recs] == ["a", "b"] and recs[0].audio == str(audio / "a.wav")
    assert json.loads(out.read_text().splitlines()[0])["audio"] == "../clips/a.wav"
    assert recs[1].split == "test" and recs[0].extra["aspect_list"] == ["rock", "loud"]
    # a manifest is itself a readable format
    assert detect_format(out) == "manifest" and len(load_dataset(out)) == 2


def test_load_npy_audio(tmp_path):
    x = np.sin(np.linspace(0, 100, 4800)).astype(np.float32)
    np.save(tmp_path / "m.npy", x)
    y, sr = load_npy_audio(tmp_path / "m.npy")
    assert sr == NPY_SAMPLE_RATE and np.array_equal(x, y)
    np.save(tmp_path / "st.npy", np.stack([x, x]))
    y, sr = load_npy_audio(tmp_path / "st.npy", sample_rate=48000, target_rate=24000)
    assert sr == 24000 and abs(len(y) - 2400) <= 1
    np.save(tmp_path / "nan.npy", np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioError, match="NaN"):
        load_npy_audio(tmp_path / "nan.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(AudioError, match="not a readable .npy"):
        load_npy_audio(tmp_path / "junk.npy")


def test_infer_length():
    assert infer_length("Sad and soulful.") == "short"
    assert infer_length("One. Two. Three.") == "long"
    assert infer_length("word " * 41) == "long"
