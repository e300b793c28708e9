"""The model-facing subcommands: ``caption``, ``ask``, ``chat``, ``convert``, ``demo``,
``features`` (filling the feature cache of :mod:`musilingo.features`) and ``analyze`` (the
measured facts of :mod:`musilingo.analysis`).

Each is a typed function whose signature and docstring are its command line
(:mod:`musilingo.cli.parser`); tests and scripts call them directly. They print results (plain
text, or one JSON object per line with ``as_json``) and return an exit code. Heavy libraries
(torch, transformers) are imported inside the functions, so ``--help`` stays fast. The other
subcommands live beside the library code they drive (see ``musilingo.cli.COMMANDS``).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from musilingo.errors import ConfigError, MusiLingoError
from musilingo.generation import Decoding, Precision, Runtime
from musilingo.scale.options import RayOptions

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

# plain: this process, file after file; ray: a Ray Data job (the scale extra), local or a cluster
Engine = Literal["plain", "ray"]

DEMO_QUESTIONS = ("What is the tempo of this music?", "Which instruments are playing?")


def _err(msg: str) -> None:
    print(f"musilingo: {msg}", file=sys.stderr)


def _emit(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


@dataclass
class ModelSource:
    """Which model answers, and where it runs."""

    model: str = "default"
    """model folder or preset: default (offline), paper, tiny (random weights, for tests)"""
    device: str | None = None
    """cpu, cuda or cuda:N (default: cuda when available)"""
    llm: str | None = None
    """replace the model's LLM (a folder or hub id), e.g. a Vicuna-7B folder for paper"""
    precision: Precision | None = None
    """weights greedy answers are decoded with: auto = the LLM's own dtype; bfloat16; int8 and
    int8-dynamic run on CPU only (docs/usage.md says what each costs in quality) (default: the
    model's config)"""
    runtime: Runtime | None = None
    """what decodes greedy answers: torch, or llama.cpp (CPU, LLaMA-architecture LLMs; needs
    llama-cpp-python, see docs/usage.md) (default: the model's config)"""

    def load(self):
        """Load the model; notes about replaced parts are printed as warnings."""
        from musilingo.model import load_model

        m, notes = load_model(self.model, self.device, self.llm, precision=self.precision,
                              runtime=self.runtime)
        for note in notes:
            _err(f"warning: {note}")
        return m


@dataclass
class AnswerOptions:
    """How answers are generated (``caption`` and ``ask``)."""

    batch_size: int = 8
    """clips per encoder / generate call"""
    decoding: Decoding = "greedy"
    """greedy; paper = sampling T=0.1 top_p=0.5 as published; beam = 4 beams"""
    max_new_tokens: int | None = None
    """longest answer in tokens (default: the model's)"""
    window: float | None = None
    """window length in seconds for long files (default: the model's, 30)"""
    whole_track: bool = True
    """long files: also answer about the whole track, not only per window"""
    max_duration: float | None = None
    """refuse files longer than this many seconds (default 3 h)"""

    def __post_init__(self) -> None:
        _check_decoding(self.decoding)
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        _check_max_new_tokens(self.max_new_tokens)
        for name, value in (("window", self.window), ("max-duration", self.max_duration)):
            if value is not None and not value > 0:
                raise ConfigError(f"--{name} must be a positive number of seconds, got {value}")


def _check_decoding(decoding: str) -> None:
    if decoding not in Decoding.__args__:
        raise ConfigError(f"unknown decoding {decoding!r}; choose one of "
                          f"{', '.join(Decoding.__args__)}")


def _check_max_new_tokens(n: int | None) -> None:
    if n is not None and n < 1:
        raise ConfigError(f"--max-new-tokens must be at least 1, got {n}")


def expand_inputs(inputs: list[str]) -> list[str]:
    """FILE | DIR (recursive, audio extensions) | MANIFEST (.jsonl) -> a list of audio paths."""
    from musilingo.audio import find_audio_files
    from musilingo.data.manifest import read_manifest

    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = find_audio_files(p)
            if not found:
                raise MusiLingoError(f"{p}: no audio files found in this folder")
            out += [str(f) for f in found]
        elif p.suffix == ".jsonl" and p.is_file():
            out += [r.audio for r in read_manifest(p)]
        else:
            out.append(item)  # a missing file is reported per file by the model
    return out


def _done_sources(out: Path) -> set[str]:
    """Sources already answered in a JSONL output (for resume); drops a torn last line."""
    done: set[str] = set()
    if not out.is_file():
        return done
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    good = []
    for line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill: drop it, that file is redone
        good.append(line if line.endswith("\n") else line + "\n")
        if obj.get("scope") == "track" and not obj.get("error"):
            done.add(obj["source"])
    if len(good) != len(lines):
        out.write_text("".join(good), encoding="utf-8")
    return done


def _answer_lines(ans) -> list[dict]:
    rows = [{"scope": "window", **w.to_json()} for w in ans.windows]
    track = ans.to_json()
    track.pop("windows", None)
    rows.append({"scope": "track", **track})
    return rows


def _fmt_time(s: float) -> str:
    return f"{int(s // 60)}:{s % 60:04.1f}"


def answer_all(inputs: list[str], question: str, source: ModelSource | None = None,
               options: AnswerOptions | None = None, as_json: bool = False,
               out: str | None = None) -> int:
    """Answer one question about every input (files, folders, manifests); ``caption`` and ``ask``.

    Long files get one answer per window and, unless ``options.whole_track`` is off, one about
    the whole track. Returns 0, or 1 when some inputs failed (each is reported on stderr).
    """
    from musilingo.audio import MAX_DURATION_S
    from musilingo.generation import GenerationOptions

    source, options = source or ModelSource(), options or AnswerOptions()
    paths = expand_inputs(inputs)
    m = source.load()
    if options.window:
        m.config.window_s = options.window
    opts = GenerationOptions.named(options.decoding,
                                   options.max_new_tokens or m.config.max_new_tokens)
    out_path = Path(out) if out else None
    done = _done_sources(out_path) if out_path else set()
    todo = [p for p in paths if p not in done]
    if done:
        _err(f"resuming: {len(paths) - len(todo)} of {len(paths)} inputs already answered in {out}")
    failures = 0
    bar = None
    if len(todo) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="file", file=sys.stderr, dynamic_ncols=True)
    sink = open(out_path, "a", encoding="utf-8") if out_path else None
    try:
        for _, ans in m.iter_answers(todo, question, batch_size=options.batch_size, options=opts,
                                     whole_track=options.whole_track,
                                     max_duration_s=options.max_duration or MAX_DURATION_S):
            if ans.error:
                failures += 1
                _err(f"{ans.source}: {ans.error}")
            rows = _answer_lines(ans)
            if sink:
                for r in rows:
                    sink.write(json.dumps(r, ensure_ascii=False) + "\n")
                sink.flush()
                os.fsync(sink.fileno())
            if as_json:
                for r in rows:
                    _emit(r)
            elif not ans.error and not sink:
                for w in ans.windows:
                    print(f"{w.source} [{_fmt_time(w.start_s)}-{_fmt_time(w.end_s)}]: {w.text}")
                label = " [whole track]" if ans.windows else ""
                print(f"{ans.source}{label}: {ans.text}", flush=True)
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
        if sink:
            sink.close()
    return EXIT_PARTIAL if failures else EXIT_OK


def _check_engine(engine: str, out: str | None, device: str | None = None) -> None:
    if engine not in Engine.__args__:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(Engine.__args__)}")
    if engine == "ray" and not out:
        raise ConfigError("--engine ray writes its rows to a folder: give --out FOLDER")
    if engine == "ray" and device and device != "cpu":
        raise ConfigError("with --engine ray, GPUs are given per actor: --gpus-per-worker and "
                          "--gpus-per-encoder, not --device")


def run_ray_job(job, inputs: list[str], out: str, ray: RayOptions | None, as_json: bool) -> int:
    """Run a scale job (``musilingo.scale``) and report it: a summary line (JSON with
    ``as_json``), each failed file on stderr. Exit 0 when every file is done, 1 when some failed
    or are missing (a rerun does them)."""
    from musilingo.scale.ray_engine import run_job

    summary = run_job(job, inputs, out, ray or RayOptions(), progress=not as_json)
    for src, problem in summary.failed.items():
        _err(f"{src}: {problem}")
    if summary.missing:
        _err(f"{len(summary.missing)} files not finished (their batch failed); rerun to do them")
    if as_json:
        _emit(summary.to_json())
    else:
        print(f"{summary.answered} done, {len(summary.failed)} failed, "
              f"{len(summary.missing)} missing, {summary.skipped_done} done before; rows in "
              f"{summary.out}/rows "
              f"({summary.seconds:.1f} s)")
    return EXIT_OK if summary.complete else EXIT_PARTIAL


def answer_with_ray(inputs: list[str], task: str, question: str | None,
                    source: ModelSource | None, options: AnswerOptions | None, as_json: bool,
                    out: str | None, ray: RayOptions | None) -> int:
    """``caption`` / ``ask`` with ``--engine ray``: the same answers, as a Ray Data job."""
    from musilingo.scale.job import JobSpec

    source, options = source or ModelSource(), options or AnswerOptions()
    _check_engine("ray", out, source.device)
    job = JobSpec(task=task, question=question, model=source.model, llm=source.llm,
                  decoding=options.decoding, max_new_tokens=options.max_new_tokens,
                  window_s=options.window, whole_track=options.whole_track,
                  max_duration_s=options.max_duration, batch_size=options.batch_size)
    return run_ray_job(job, inputs, out, ray, as_json)


def caption(inputs: list[str], source: ModelSource | None = None,
            options: AnswerOptions | None = None, as_json: bool = False,
            out: str | None = None, engine: Engine = "plain", ray: RayOptions | None = None) -> int:
    """Caption audio files, folders or manifests.

    Exit code 0 when every file was captioned, 1 when some failed (each is named on stderr),
    2 when the command could not run.

    Args:
        inputs: audio files, folders (searched recursively) or .jsonl manifests.
        source: the model.
        options: generation.
        as_json: print JSON lines: one per window and one per file (scope=track).
        out: append JSON lines to this file instead of printing; a rerun skips the files
            already answered there. With --engine ray: the output folder (required), sharded
            rows in OUT/rows, resumable the same way.
        engine: plain runs here, file after file; ray runs a Ray Data job (pip install
            'musilingo[scale]'): a local Ray, or the cluster of --address.
        ray: the Ray engine.
    """
    if engine == "ray":
        return answer_with_ray(inputs, "caption", None, source, options, as_json, out, ray)
    from musilingo.prompts import CAPTION_INSTRUCTION

    return answer_all(inputs, CAPTION_INSTRUCTION, source, options, as_json, out)


def ask(path: str, question: str, source: ModelSource | None = None,
        options: AnswerOptions | None = None, as_json: bool = False,
        out: str | None = None, engine: Engine = "plain", ray: RayOptions | None = None) -> int:
    """Ask a question about an audio file (or every file of a folder or manifest).

    Exit code 0 when every file was answered, 1 when some failed, 2 when the command could not
    run.

    Args:
        path: an audio file, or a folder / .jsonl manifest: the same question for each file.
        question: the question, e.g. "What is the tempo of this music?".
        source: the model.
        options: generation.
        as_json: print JSON lines: one per window and one per file (scope=track).
        out: append JSON lines to this file instead of printing; a rerun skips the files
            already answered there. With --engine ray: the output folder (required), sharded
            rows in OUT/rows, resumable the same way.
        engine: plain runs here, file after file; ray runs a Ray Data job (pip install
            'musilingo[scale]'): a local Ray, or the cluster of --address.
        ray: the Ray engine.
    """
    if engine == "ray":
        return answer_with_ray([path], "ask", question, source, options, as_json, out, ray)
    return answer_all([path], question, source, options, as_json, out)


def chat(path: str, source: ModelSource | None = None, decoding: Decoding = "greedy",
         max_new_tokens: int | None = None, as_json: bool = False) -> int:
    """Chat about one audio file: each line read is a question, answered with the turns before.

    Reads questions from standard input until an empty line, ``exit`` or end of input.

    Args:
        path: the audio file.
        source: the model.
        decoding: greedy; paper = sampling T=0.1 top_p=0.5 as published; beam = 4 beams.
        max_new_tokens: longest answer in tokens (default: the model's).
        as_json: print one JSON object per turn ({"question", "answer"}), no prompts.
    """
    from musilingo.generation import GenerationOptions

    _check_decoding(decoding)
    _check_max_new_tokens(max_new_tokens)
    m = (source or ModelSource()).load()
    opts = GenerationOptions.named(decoding, max_new_tokens or m.config.max_new_tokens)
    conv = m.start_chat(path)
    interactive = not as_json and sys.stdin.isatty()
    if not as_json:
        print(f"Chatting about {path} ({conv.audio.duration_s:.1f} s). Empty line or 'exit' ends.")
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip().lower() in ("", "exit", "quit"):
            return EXIT_OK
        answer = conv.ask(line.strip(), opts)
        if as_json:
            _emit({"source": path, "question": line.strip(), "answer": answer})
        else:
            print(f"musilingo> {answer}", flush=True)


def convert(checkpoint: str, *, out: str, llm: str | None = None, encoder_path: str | None = None,
            load: bool = False, as_json: bool = False) -> int:
    """Import a released MusiLingo checkpoint (.pth or safetensors) into a ``paper`` model folder.

    Args:
        checkpoint: MusiLingo .pth (a dict with 'model': llama_proj.*) or a safetensors
            file / folder.
        out: model folder to write.
        llm: Vicuna-7B folder or hub id to record in the model's config.
        encoder_path: MERT-v1-330M folder or hub id to record in the model's config.
        load: load the written folder once to check it.
        as_json: print {"model": FOLDER} instead of a sentence.
    """
    from musilingo.convert import convert_checkpoint

    folder = convert_checkpoint(checkpoint, out, llm=llm, encoder_path=encoder_path, load=load)
    if as_json:
        _emit({"model": str(folder)})
    else:
        print(f"wrote {folder}")
    return EXIT_OK


def demo(source: ModelSource | None = None, as_json: bool = False) -> int:
    """Caption the example clip shipped with the package and ask it two questions, next to the
    clip's truth and what ``musilingo analyze`` measures on it.

    Args:
        source: the model.
        as_json: print one JSON object: {"clip", "truth", "measured", "chords", "caption",
            "answers": [{"question", "answer"}]} ("measured": the facts line; for a model that
            reads facts, the line it read; "chords": the first 12 measured chord changes).
    """
    from importlib.resources import files

    clip = files("musilingo") / "assets" / "example.ogg"
    truth = json.loads((files("musilingo") / "assets" / "example.json").read_text())
    m = (source or ModelSource()).load()
    caption = m.caption(str(clip))
    answers = [{"question": q, "answer": m.ask(str(clip), q).text} for q in DEMO_QUESTIONS]
    measured = caption.facts
    if measured is None:  # a model that reads no facts: measure them for the user anyway
        from musilingo.analysis import analyze_file

        facts = analyze_file(str(clip))
        measured = facts.summary()
    else:  # the facts the model read, kept with its prepared audio (for the chords)
        from musilingo.analysis.facts import merge_facts

        facts = merge_facts([f for f in m.prepare([str(clip)])[0].facts if f is not None])
    chords = facts.chords.progression(12) if facts.chords is not None else []
    if as_json:
        _emit({"clip": str(clip), "truth": truth, "measured": measured, "chords": chords,
               "caption": caption.text, "answers": answers})
        return EXIT_OK
    print(f"example clip: {clip} ({truth['duration_s']} s)")
    print(f"truth: {truth['style']} in {truth['meter']}, {truth['key_tonic']} {truth['key_mode']}, "
          f"{truth['tempo_bpm']:.0f} bpm, {', '.join(truth['instruments'])}, "
          f"{'with' if truth['drums'] else 'no'} drums")
    print(f"measured: {measured.removeprefix('Measured: ')}"
          + ("  (the model reads this line)" if caption.facts else ""))
    if chords:
        print(f"chords: {' '.join(chords)}")
    print(f"caption: {caption.text}")
    for a in answers:
        print(f"Q: {a['question']}\nA: {a['answer']}")
    return EXIT_OK


def features_command(manifest: str, out: str, model: str | None = None, encoder: str | None = None,
                     batch_size: int = 8, device: str = "cpu", skip_missing: bool = False,
                     split: str | None = None, as_json: bool = False, engine: Engine = "plain",
                     ray: RayOptions | None = None) -> int:
    """Fill the pooled-feature cache for a manifest (resumable); prints clips/s.

    Exit code 0 when every clip was encoded, 1 when some could not be (they are retried on the
    next run).

    Args:
        manifest: JSONL manifest whose clips are encoded.
        out: cache root folder (one subfolder per feature spec, e.g. the training run's
            feature_cache).
        model: encode as this model folder or preset does (default: the default preset).
        encoder: encoder name instead of a model: musicnn | basic-pitch | musicnn+basic-pitch |
            mert:PATH.
        batch_size: clips per encoder call.
        device: cpu, cuda or cuda:N.
        skip_missing: leave out clips whose audio file is missing (default: refuse to run).
        split: only the records of this split (default: every record).
        as_json: print the summary as one JSON object (default: one line of text).
        engine: plain fills the cache here; ray runs a Ray Data job (pip install
            'musilingo[scale]') that writes each window's pooled features as rows (sharded
            JSONL/Parquet in OUT/rows, resumable) instead of a cache.
        ray: the Ray engine.
    """
    from musilingo.data.manifest import check_audio_exists, read_manifest
    from musilingo.features import build_feature_cache, feature_spec_from

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    records = [r for r in read_manifest(manifest) if split is None or r.split == split]
    records, skipped = check_audio_exists(records, skip_missing, where=manifest)
    if engine == "ray":
        from musilingo.scale.job import JobSpec

        _check_engine(engine, out, device)
        job = JobSpec(task="features", model=encoder or model or "default", batch_size=batch_size)
        return run_ray_job(job, [r.audio for r in records], out, ray, as_json)
    _check_engine(engine, out)
    spec = feature_spec_from(encoder or model or "default")
    spec.encoder.to(device)
    cache, stats = build_feature_cache(spec, records, out, batch_size, device)
    stats.pop("failed")
    summary = {"cache": str(cache.dir), "clips": len(cache), "skipped_missing": skipped,
               **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()}}
    if as_json:
        print(json.dumps(summary))
    else:
        print(", ".join(f"{k} {v}" for k, v in summary.items()))
    return 1 if stats["errors"] else 0


def _facts_text(path: str, facts) -> str:
    """The readable block ``musilingo analyze`` prints for one file."""
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
    if facts.chords is not None and facts.chords.segments:
        segs = facts.chords.segments
        conf = sum(c.confidence * (c.end - c.start) for c in segs) / max(
            sum(c.end - c.start for c in segs), 1e-9)
        lines.append(f"  chords: {' '.join(facts.chords.progression()) or 'none'} ({len(segs)} "
                     f"segments, mean confidence {conf:.2f})")
    return "\n".join(lines)


def analyze_command(files: list[str], as_json: bool = False, tags: bool = True,
                    max_duration: float = 600.0, out: str | None = None,
                    engine: Engine = "plain", ray: RayOptions | None = None) -> int:
    """Measure tempo (with beats and downbeats), meter, key, loudness and real-world tags of
    audio files, each with a confidence.

    Args:
        files: audio files (any format ffmpeg or libsndfile reads).
        as_json: print one JSON object per file ({"file": ..., "facts": {...}, "summary": ...},
            or {"file": ..., "error": ...}) instead of text.
        tags: run the musicnn taggers (real-world tags and the vocals fact); --no-tags is
            about twice as fast.
        max_duration: longest file accepted, in seconds.
        out: with --engine ray: the output folder (required), one row of facts per file in
            sharded files under OUT/rows; a rerun skips the files already done.
        engine: plain analyses here, file after file; ray runs a Ray Data job (pip install
            'musilingo[scale]'): a local Ray, or the cluster of --address.
        ray: the Ray engine.

    Returns:
        0 when every file was analysed, 1 when some failed (each failure is printed on stderr,
        naming the file).
    """
    if engine == "ray":
        from musilingo.scale.job import JobSpec

        _check_engine("ray", out)
        job = JobSpec(task="analyze", max_duration_s=max_duration, analysis_tags=tags)
        return run_ray_job(job, files, out, ray, as_json)
    _check_engine(engine, None)
    from musilingo.analysis.pipeline import analyze_file

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
            print(_facts_text(str(path), facts), flush=True)
    return EXIT_PARTIAL if failed else EXIT_OK
