"""Batch inference on Ray Data (musilingo.scale): sinks and resume without Ray (fast), then on a
local Ray with 2 CPUs and the tiny model (slow): same rows as the plain path, bad files recorded,
a killed worker retried, a failed batch completed by the rerun."""

from __future__ import annotations

import json
import os
import pickle
import sys

import numpy as np
import pytest
import soundfile as sf

from musilingo.errors import ConfigError
from musilingo.scale.inputs import expand_inputs
from musilingo.scale.job import JobSpec
from musilingo.scale.options import RayOptions
from musilingo.scale.sinks import ShardSink, read_rows

from conftest import SR, tone

pytest.importorskip("pyarrow")

QUESTION = "What is the tempo of this music?"


@pytest.fixture
def clips(tmp_path):
    """Four short clips, one 65 s clip (three windows) and one corrupt file."""
    d = tmp_path / "clips"
    d.mkdir()
    for i in range(4):
        sf.write(str(d / f"c{i}.wav"), tone(1.0 + 0.5 * i, SR, 220.0 * (i + 1), seed=i), SR)
    sf.write(str(d / "long.wav"), tone(65.0, SR, 330.0), SR)
    (d / "bad.wav").write_bytes(b"RIFF not audio at all" * 8)
    return d


def _row(source, text="x", error=None):
    return {
        "scope": "track",
        "source": source,
        "question": "q",
        "text": text,
        "start_s": 0.0,
        "end_s": 1.0,
        "error": error,
    }


# ------------------------------------------------------------------ fast: no Ray
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_shards_are_atomic_and_resume_skips_exactly_the_answered_files(tmp_path, fmt):
    sink = ShardSink(tmp_path / "out", fmt)
    sink.check_job({"task": "caption", "musilingo_version": "0"})
    sink.write([_row("a"), _row("b"), _row("bad", text=None, error="unreadable")])
    # a job killed while writing a shard leaves only a temp file: never read, removed on restart
    torn = tmp_path / "out" / "rows" / f".part-x.{fmt}.1234.tmp"
    torn.write_bytes(b'{"source": "c", "sco')
    assert sink.done_sources() == {"a", "b"}  # the failed file is retried, like the plain --out
    assert sink.remove_temp_files() == 1 and not torn.exists()
    sink.write([_row("bad", text="now readable"), _row("c")])
    assert sink.done_sources() == {"a", "b", "bad", "c"}
    rows = read_rows(tmp_path / "out")
    assert sorted(r["source"] for r in rows) == ["a", "b", "bad", "c"]  # the failure is superseded
    assert next(r for r in rows if r["source"] == "bad")["text"] == "now readable"
    assert len(sink.shards()) == 2 and not list((tmp_path / "out" / "rows").glob(".*"))


def test_a_rerun_with_other_settings_is_refused(tmp_path):
    sink = ShardSink(tmp_path / "out")
    sink.check_job(JobSpec(task="ask", question="Q?", model="tiny").key())
    sink.check_job(
        JobSpec(task="ask", question="Q?", model="tiny", batch_size=3).key()
    )  # same rows
    with pytest.raises(ConfigError, match="question"):
        sink.check_job(JobSpec(task="ask", question="Other?", model="tiny").key())


def test_inputs_from_folders_manifests_lists_and_file_uris(tmp_path, clips):
    from musilingo.data.manifest import Record, write_manifest

    write_manifest(tmp_path / "m.jsonl", [Record(id="x", audio="clips/c1.wav")])
    (tmp_path / "list.txt").write_text(f"# files\nclips/c2.wav\n\n{clips / 'c0.wav'}\n")
    uri = f"file://{clips}"
    got = expand_inputs([str(tmp_path / "m.jsonl"), str(tmp_path / "list.txt"), uri, "missing.wav"])
    assert got[:3] == [str(clips / "c1.wav"), str(tmp_path / "clips/c2.wav"), str(clips / "c0.wav")]
    assert got[3:-1] == [
        f"file://{clips}/{n}"
        for n in ("bad.wav", "c0.wav", "c1.wav", "c2.wav", "c3.wav", "long.wav")
    ]
    assert got[-1] == "missing.wav"  # reported per file by the job, as the plain CLI does


def test_stages_without_ray_give_model_ask_rows(clips, tiny_model):
    """The per-batch stages the actors run give the rows of the plain path, with the bad file
    recorded and the rest answered (a one-window and a three-window clip)."""
    from musilingo.scale.stages import EncodeStage, GenerateStage, write_stage

    job = JobSpec(task="ask", question=QUESTION, model="tiny", batch_size=4)
    sources = [str(clips / n) for n in ("c0.wav", "bad.wav", "long.wav")]
    batch = {"source": np.array(sources, dtype=object), "location": np.array(sources, dtype=object)}
    encoded = EncodeStage(job)(batch)
    assert encoded["error"][0] == "" and "unreadable" in encoded["error"][1]
    answered = GenerateStage(job)(encoded)
    out = write_stage(answered, str(clips.parent / "out"), "jsonl")
    assert list(out["source"]) == sources
    rows = read_rows(clips.parent / "out")
    expected = []
    for ans in tiny_model.ask(sources, QUESTION):
        if ans.error:
            expected.append(
                {
                    "scope": "track",
                    "source": ans.source,
                    "question": QUESTION,
                    "text": None,
                    "start_s": None,
                    "end_s": None,
                    "error": ans.error,
                }
            )
            continue
        expected += [{"scope": "window", **w.to_json()} for w in ans.windows]
        track = ans.to_json()
        track.pop("windows", None)
        expected.append({"scope": "track", **track})
    assert rows == expected
    assert sum(r["scope"] == "window" for r in rows) == 3


def test_feature_rows_are_the_pooled_window_features(clips, tiny_model):
    from musilingo.scale.stages import EncodeStage

    job = JobSpec(task="features", model="tiny")
    src = str(clips / "long.wav")
    rows = pickle.loads(
        EncodeStage(job)(
            {"source": np.array([src], dtype=object), "location": np.array([src], dtype=object)}
        )["rows"][0]
    )
    prepared = tiny_model.prepare([src])[0]
    assert [(r["start_s"], r["end_s"]) for r in rows] == prepared.spans
    for r, f in zip(rows, prepared.features):
        np.testing.assert_allclose(
            np.array(r["features"]).reshape(r["n_tokens"], r["dim"]),
            f.numpy(),
            rtol=1e-5,
            atol=1e-6,
        )


# ------------------------------------------------------------------ slow: a local Ray, 2 CPUs
class KillOnce:
    """Kill the worker process the first time it gets ``target`` (a marker file remembers)."""

    def __init__(self, target: str, marker: str):
        self.target, self.marker = target, marker

    def __call__(self, sources: list[str]) -> None:
        if self.target in sources and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)


class RaiseOn:
    """An exception injected into every batch that holds ``target``."""

    def __init__(self, target: str):
        self.target = target

    def __call__(self, sources: list[str]) -> None:
        if self.target in sources:
            raise RuntimeError("injected failure")


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the hooks above, by value
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _plain_rows(inputs, question, tmp_path):
    """The plain CLI's rows for the same inputs (``musilingo ask ... --out``)."""
    from musilingo.cli.commands import AnswerOptions, ModelSource, answer_all

    out = tmp_path / "plain.jsonl"
    answer_all(
        inputs,
        question,
        ModelSource(model="tiny", device="cpu"),
        AnswerOptions(batch_size=2),
        out=str(out),
    )
    return [json.loads(line) for line in out.read_text().splitlines()]


def _key(r):
    return r["source"], r["scope"], r["start_s"] or 0.0


@pytest.mark.slow
def test_ray_job_equals_the_plain_cli_and_records_the_bad_file(local_ray, clips, tmp_path):
    from musilingo.scale.ray_engine import run_job

    job = JobSpec(task="ask", question=QUESTION, model="tiny", batch_size=2)
    opts = RayOptions(workers=2, shard_files=2, format="parquet")
    s = run_job(job, [str(clips)], str(tmp_path / "out"), opts, progress=False)
    assert s.answered == 5 and list(s.failed) == [str(clips / "bad.wav")] and not s.missing
    rows = sorted(read_rows(tmp_path / "out"), key=_key)
    assert rows == sorted(_plain_rows([str(clips)], QUESTION, tmp_path), key=_key)
    again = run_job(job, [str(clips)], str(tmp_path / "out"), opts, progress=False)
    assert again.skipped_done == 5 and again.answered == 0 and len(again.failed) == 1


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_its_batch_retried(local_ray, clips, tmp_path):
    from musilingo.scale.ray_engine import run_job

    job = JobSpec(task="caption", model="tiny", batch_size=2)
    marker = tmp_path / "killed"
    s = run_job(
        job,
        [str(clips)],
        str(tmp_path / "out"),
        RayOptions(workers=2),
        progress=False,
        on_batch=KillOnce(str(clips / "c2.wav"), str(marker)),
    )
    assert marker.exists()  # the worker did die
    assert s.answered == 5 and not s.missing
    rows = read_rows(tmp_path / "out")
    assert sum(r["source"] == str(clips / "c2.wav") for r in rows) == 1


@pytest.mark.slow
def test_a_failed_batch_is_left_out_and_the_rerun_completes_exactly_it(local_ray, clips, tmp_path):
    from musilingo.scale.ray_engine import run_job

    job = JobSpec(task="caption", model="tiny", batch_size=2)
    out = str(tmp_path / "out")
    first = run_job(
        job,
        [str(clips)],
        out,
        RayOptions(workers=2, retries=1),
        progress=False,
        on_batch=RaiseOn(str(clips / "c3.wav")),
    )
    assert str(clips / "c3.wav") in first.missing and first.answered == 5 - len(first.missing)
    before = {r["source"] for r in read_rows(out) if not r["error"]}
    rerun = run_job(job, [str(clips)], out, RayOptions(workers=2), progress=False)
    assert rerun.answered == len(first.missing) and not rerun.missing
    after = read_rows(out)
    assert {r["source"] for r in after if not r["error"]} - before == set(first.missing)
    from musilingo.prompts import CAPTION_INSTRUCTION

    assert sorted(after, key=_key) == sorted(
        _plain_rows([str(clips)], CAPTION_INSTRUCTION, tmp_path), key=_key
    )
    runs = [json.loads(line) for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines()]
    assert [r["missing"] for r in runs] == [len(first.missing), 0]


def test_cli_engine_flags(capsys, wav_factory):
    from musilingo.cli import main

    with pytest.raises(SystemExit):
        main(["caption", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--engine {plain,ray}", "--address", "--workers", "--gpus-per-worker", "--format"):
        assert flag in help_text
    clip = str(wav_factory())
    assert main(["caption", clip, "--engine", "ray", "--model", "tiny"]) == 2  # no --out folder
    assert "--out FOLDER" in capsys.readouterr().err
    assert main(["ask", clip, "Q?", "--engine", "ray", "--out", "x", "--device", "cuda:0"]) == 2
    assert "--gpus-per-worker" in capsys.readouterr().err
    assert main(["caption", clip, "--engine", "ray", "--out", "x", "--workers", "0"]) == 2
    assert main(["analyze", clip, "--engine", "ray", "--no-tags"]) == 2  # no --out folder
    assert "--out FOLDER" in capsys.readouterr().err


def test_analyze_rows_are_the_analyze_command_facts(clips):
    pytest.importorskip("librosa")
    from musilingo.scale import TASKS

    if "analyze" not in TASKS:
        pytest.skip("musilingo.analysis is not installed")
    from musilingo.analysis.pipeline import analyze_file
    from musilingo.scale.stages import AnalyzeStage

    job = JobSpec(task="analyze", analysis_tags=False)
    src = [str(clips / "c3.wav"), str(clips / "bad.wav")]
    batch = {"source": np.array(src, dtype=object), "location": np.array(src, dtype=object)}
    out = AnalyzeStage(job)(batch)
    good, bad = (pickle.loads(r)[0] for r in out["rows"])
    facts = analyze_file(src[0], with_tags=False)
    expected = facts.to_dict()
    got = json.loads(good["facts"])
    got.pop("seconds", None), expected.pop("seconds", None)  # time taken differs run to run
    assert got == expected and good["summary"] == facts.summary() and good["error"] is None
    assert bad["facts"] is None and "unreadable" in bad["error"] and out["error"][1] == bad["error"]
