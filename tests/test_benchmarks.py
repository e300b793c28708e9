"""The GPU benchmark's code paths, run on CPU with tiny models (its hidden ``--cpu-smoke`` mode).

The figures themselves are only meaningful on a GPU; these tests check that every section runs
and records a row, so the script does not break between the rare sessions that have a GPU.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_gpu.py"


def run_smoke(tmp_path, *extra):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--cpu-smoke", "--json-out", str(out), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_gpu_benchmark_runs_every_eager_section_on_cpu(tmp_path):
    res = run_smoke(tmp_path, "--sections", "mert,llm,pipeline,train,fast")
    assert res["mode"] == "cpu-smoke" and res["errors"] == {}
    sections = {r["section"] for r in res["rows"]}
    assert {"mert", "llm eager", "pipeline eager", "train features", "train with MERT",
            "fast check", "pipeline fast"} <= sections
    check = next(r for r in res["rows"] if r["section"] == "fast check")
    assert check["compiled_vs_eager"]["rows"] == 2 and check["compiled_repeatable"]
    assert all(r["value"] > 0 for r in res["rows"])


@pytest.mark.slow  # torch.compile on CPU: about 20 s idle, and it needs a C++ compiler
def test_gpu_benchmark_compile_section_runs_on_cpu(tmp_path):
    res = run_smoke(tmp_path, "--sections", "llm,compile,fast", "--smoke-compile")
    assert res["errors"] == {}
    assert [r["section"] for r in res["rows"]].count("llm static+compile") == 1
    check = next(r for r in res["rows"] if r["section"] == "fast check")
    assert check["compiled"] and check["compiled_repeatable"]


def test_load_benchmark_times_both_sides_and_names_a_failed_load(tmp_path):
    """bench_load.py: one warm-up and one timed run per side (here both sides are this tree), pair
    ratios recorded; a model that cannot load stops it with the loader's error, not a figure."""
    bench = ROOT / "benchmarks" / "bench_load.py"
    out = tmp_path / "load.json"
    proc = subprocess.run([sys.executable, str(bench), "--model", "tiny", "--runs", "1", "--vs-src",
                           str(ROOT / "src"), "--json-out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["sides"]) == {"A", "B"} and res["runs"] == 1
    for side in res["sides"].values():
        assert len(side["runs"]) == 1 and side["wall_s"]["median"] > 0 and side["peak_mib"]["median"] > 0
    assert set(res["a_over_b"]) == {"wall_s", "cpu_s", "peak_mib"}
    bad = subprocess.run([sys.executable, str(bench), "--model", str(tmp_path / "no-such-model"), "--runs", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert bad.returncode != 0 and "no-such-model" in bad.stderr and "failed" in bad.stderr


def test_facts_template_scores_the_facts_an_eval_cached(tmp_path):
    """facts_template.py answers from the facts in the feature cache: with a truth equal to those
    facts it scores 1 on tempo and meter; a clip whose facts were never measured is an error
    naming the missing facts, not a figure."""
    import soundfile as sf
    from dataclasses import replace

    from musilingo.data.manifest import read_manifest
    from musilingo.features import build_feature_cache
    from musilingo.model import MusiLingo

    sr = 22050
    t = np.arange(int(6 * sr)) / sr
    rows = []
    for i, bpm in enumerate((100.0, 140.0)):
        y = np.zeros_like(t)
        for b in np.arange(0.1, 6.0, 60.0 / bpm):
            n = min(len(t) - int(b * sr), 2000)
            y[int(b * sr):int(b * sr) + n] += np.sin(2 * np.pi * 880 * t[:n]) * np.exp(-t[:n] * 60)
        sf.write(str(tmp_path / f"c{i}.wav"), (0.5 * y).astype(np.float32), sr)
        rows.append({"id": f"c{i}", "audio": f"c{i}.wav", "split": "test", "attributes": {}})
    manifest = tmp_path / "m.jsonl"
    write = lambda: manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))  # noqa: E731
    write()
    spec = replace(MusiLingo.from_pretrained("tiny", device="cpu").feature_spec, facts=True)
    cache, _ = build_feature_cache(spec, read_manifest(manifest), tmp_path / "cache", progress=False)
    for r in rows:  # the truth is what was measured
        f = cache.facts(r["id"])[0]
        r["attributes"] = {"tempo_bpm": f.tempo.bpm, "meter": f.meter.signature}
    write()
    out = tmp_path / "tmpl.json"
    script = ROOT / "benchmarks" / "facts_template.py"
    args = [sys.executable, str(script), str(manifest), "--split", "test", "--model", "tiny",
            "--feature-cache", str(tmp_path / "cache"), "--out", str(out)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["n_records"] == 2 and res["n_items"] == 4
    assert res["facts_only"]["tempo_accuracy"] == 1.0 and res["facts_only"]["meter_accuracy"] == 1.0
    rows.append({"id": "c9", "audio": "c0.wav", "split": "test", "attributes": {"tempo_bpm": 90.0}})
    write()
    bad = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert bad.returncode != 0 and "no facts" in bad.stderr and "c9" in bad.stderr


def test_chord_benchmark_scores_a_known_progression_and_refuses_to_tune_on_test(tmp_path):
    """bench_chords.py on two generated clips whose chord truth is known: block triads with the
    root in the bass, one per 0.8 s. The estimate gets most of the time right and beats "always
    the tonic triad"; --grid on the test split is refused."""
    pytest.importorskip("librosa")
    pytest.importorskip("mir_eval")
    import soundfile as sf

    sr, dur = 22050, 0.8
    t = np.arange(int(dur * sr)) / sr

    def tone(midi):
        f = 440.0 * 2 ** ((midi - 69) / 12)
        return sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)) * np.exp(-2 * t)

    progressions = {"c0": [(60, "maj"), (57, "min"), (53, "maj"), (55, "maj")],   # C Am F G
                    "c1": [(62, "min"), (55, "maj"), (60, "maj"), (57, "min")]}   # Dm G C Am
    names = {53: "F", 55: "G", 57: "A", 60: "C", 62: "D"}
    corpus = tmp_path / "corpus"
    (corpus / "audio").mkdir(parents=True)
    rows = []
    for cid, prog in progressions.items():
        y, timeline = [], []
        for rep in range(3):
            for i, (root, q) in enumerate(prog):
                third = 3 if q == "min" else 4
                y.append(0.5 * tone(root - 24) + 0.3 * sum(tone(root + iv) for iv in (0, third, 7)))
                start = round((rep * len(prog) + i) * dur, 3)
                timeline.append([start, round(start + dur, 3), f"{names[root]}:{q}"])
        audio = np.concatenate(y)
        sf.write(str(corpus / "audio" / f"{cid}.wav"), (0.8 * audio / np.abs(audio).max()).astype(np.float32), sr)
        rows.append({"id": cid, "audio": f"audio/{cid}.wav", "split": "valid", "source": "mma:x",
                     "attributes": {"chord_timeline": timeline, "key_tonic": names[prog[0][0]],
                                    "key_mode": "minor" if prog[0][1] == "min" else "major"}})
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = ROOT / "benchmarks" / "bench_chords.py"
    out = tmp_path / "chords.json"
    args = [sys.executable, str(bench), "--split", "valid", "--corpus", str(corpus),
            "--cache", str(tmp_path / "cache"), "--out", str(out)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["clips"] == 2 and res["seconds_of_music"] == pytest.approx(2 * 12 * dur)
    assert res["estimate"]["majmin"] >= 0.8, res
    assert res["estimate"]["majmin"] > res["baseline_tonic_triad_true_key"]["majmin"] + 0.3
    refused = subprocess.run([*args[:2], "--split", "test", "--grid", *args[4:]], cwd=ROOT,
                             capture_output=True, text=True, timeout=600, check=False)
    assert refused.returncode != 0 and "chosen on dev" in refused.stderr


def _load_bench(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_meter_feel_separates_notation_from_feel():
    mod = _load_bench("meter_feel")
    conf = {"truth": ["2/4", "3/4", "6/8"], "answer": ["2/4", "3/4", "4/4", "6/8", "several"],
            "counts": [[3, 0, 5, 0, 0],   # 2/4 answered 4/4: wrong signature, right feel
                       [0, 2, 2, 0, 0],   # triple answered 4/4: wrong feel
                       [0, 0, 0, 1, 1]]}  # a hedge has no feel
    s = mod.meter_feel_scores(conf)
    assert s["n"] == 14 and s["exact"] == round(6 / 14, 4) and s["feel"] == round(11 / 14, 4)
    assert s["feel_recall"]["triple"] == {"recall": 0.5, "n": 4}
    assert s["feel_recall"]["compound"] == {"recall": 0.5, "n": 2}


def test_paired_bootstrap_reproduces_the_score_and_orders_runs(tmp_path):
    mod = _load_bench("paired_bootstrap")
    clips = [f"c{i}" for i in range(40)]
    ref = {f"{c}:{a}": (c, float((i + j) % 2)) for i, c in enumerate(clips) for j, a in enumerate("ab")}
    better = {k: (c, 1.0) for k, (c, _) in ref.items()}
    res = mod.bootstrap({"ref": ref, "same": dict(ref), "better": better}, samples=500, seed=1,
                        target=0.75)
    assert res["clips"] == 40 and res["answers"] == 80
    assert res["runs"]["ref"]["all_answers"] == 0.5 and res["runs"]["better"]["all_answers"] == 1.0
    assert res["runs"]["same"]["difference_ci95_points"] == [0.0, 0.0]
    assert res["runs"]["better"]["share_above_reference"] == 1.0
    assert res["runs"]["better"]["share_at_or_above_target"] == 1.0
    lo, hi = res["runs"]["ref"]["ci95"]
    assert lo <= 0.5 <= hi and hi - lo < 0.2  # each clip averages 0.5: a narrow interval
