"""The ``musilingo`` console script: one command, subcommands that are thin typed functions.

Each ``cmd_*`` function takes plain arguments so tests (and other programs) call it directly;
:func:`main` only parses the command line. Exit codes scripts can rely on:

- 0: everything succeeded
- 1: the job ran but some inputs failed (each failure is reported with its file and problem)
- 2: the command could not run (bad arguments, missing model, malformed manifest or checkpoint)
- 130: interrupted (finished outputs are kept; rerun to resume)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from musilingo import __version__
from musilingo.errors import MusiLingoError

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(msg: str) -> None:
    print(f"musilingo: {msg}", file=sys.stderr)


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


def _load_model(model: str, device: str | None, llm: str | None = None):
    from musilingo.model import load_model

    m, notes = load_model(model, device, llm)
    for note in notes:
        _err(f"warning: {note}")
    return m


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
    rows = [{"scope": "window", **{k: v for k, v in w.to_json().items()}} for w in ans.windows]
    track = ans.to_json()
    track.pop("windows", None)
    rows.append({"scope": "track", **track})
    return rows


def _fmt_time(s: float) -> str:
    return f"{int(s // 60)}:{s % 60:04.1f}"


def cmd_answer(inputs: list[str], question: str, model: str = "default", device: str | None = None,
               batch_size: int = 8, as_json: bool = False, out: str | None = None,
               decoding: str = "greedy", max_new_tokens: int | None = None,
               window: float | None = None, whole_track: bool = True,
               max_duration: float | None = None, llm: str | None = None) -> int:
    """Answer one question about every input; shared by ``caption`` and ``ask``."""
    from musilingo.audio import MAX_DURATION_S
    from musilingo.model import GenerationOptions

    paths = expand_inputs(inputs)
    m = _load_model(model, device, llm)
    if window:
        m.config.window_s = window
    opts = GenerationOptions.named(decoding, max_new_tokens or m.config.max_new_tokens)
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
        for _, ans in m.iter_answers(todo, question, batch_size=batch_size, options=opts,
                                     whole_track=whole_track,
                                     max_duration_s=max_duration or MAX_DURATION_S):
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
                    print(json.dumps(r, ensure_ascii=False), flush=True)
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


def cmd_chat(path: str, model: str = "default", device: str | None = None,
             decoding: str = "greedy", max_new_tokens: int | None = None, llm: str | None = None,
             stdin=None, stdout=None) -> int:
    """Interactive chat about one file: type questions, empty line or 'exit' to stop."""
    from musilingo.model import GenerationOptions

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    m = _load_model(model, device, llm)
    opts = GenerationOptions.named(decoding, max_new_tokens or m.config.max_new_tokens)
    conv = m.start_chat(path)
    interactive = stdin.isatty() if hasattr(stdin, "isatty") else False
    print(f"Chatting about {path} ({conv.audio.duration_s:.1f} s). Empty line or 'exit' ends.",
          file=stdout)
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line or line.strip().lower() in ("", "exit", "quit"):
            return EXIT_OK
        print(f"musilingo> {conv.ask(line.strip(), opts)}", file=stdout, flush=True)


def cmd_convert(checkpoint: str, out: str, llm: str | None = None, encoder_path: str | None = None,
                load: bool = False) -> int:
    """Import a released MusiLingo checkpoint (.pth or safetensors) into a ``paper`` model folder."""
    from musilingo.convert import convert_checkpoint

    folder = convert_checkpoint(checkpoint, out, llm=llm, encoder_path=encoder_path, load=load)
    print(f"wrote {folder}")
    return EXIT_OK


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="model folder or preset: default (offline), paper, tiny (random, for tests)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--llm", default=None, help="override the LLM (folder or hub id), e.g. a Vicuna-7B folder")


def _add_answer_args(p: argparse.ArgumentParser) -> None:
    _add_model_args(p)
    p.add_argument("--batch-size", type=int, default=8, help="clips per encoder/generate call")
    p.add_argument("--json", dest="as_json", action="store_true",
                   help="print JSON lines: one per window and one per file (scope=track)")
    p.add_argument("--out", default=None,
                   help="append JSON lines to this file; rerunning skips files already answered")
    p.add_argument("--decoding", default="greedy", choices=["greedy", "paper", "beam"],
                   help="greedy; paper = sampling T=0.1 top_p=0.5 as published; beam = 4 beams")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--window", type=float, default=None, help="window length in s for long files (default 30)")
    p.add_argument("--no-whole-track", dest="whole_track", action="store_false",
                   help="long files: only per-window answers")
    p.add_argument("--max-duration", type=float, default=None,
                   help="refuse files longer than this many seconds (default 3 h)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musilingo", description="MusiLingo: captions and answers about music audio, "
        "from a frozen music encoder, a trained projection and a frozen LLM.")
    parser.add_argument("--version", action="version", version=f"musilingo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("caption", help="caption audio files, folders or manifests")
    p.add_argument("inputs", nargs="+", help="audio files, folders (searched recursively) or .jsonl manifests")
    _add_answer_args(p)

    p = sub.add_parser("ask", help="ask a question about audio files")
    p.add_argument("path", help="an audio file (or a folder / manifest: the same question for each)")
    p.add_argument("question")
    _add_answer_args(p)

    p = sub.add_parser("chat", help="interactive multi-turn chat about one audio file")
    p.add_argument("path")
    _add_model_args(p)
    p.add_argument("--decoding", default="greedy", choices=["greedy", "paper", "beam"])
    p.add_argument("--max-new-tokens", type=int, default=None)

    p = sub.add_parser("convert", help="import a released MusiLingo .pth checkpoint into a model folder")
    p.add_argument("checkpoint", help="MusiLingo .pth (dict with 'model': llama_proj.*) or a safetensors file/folder")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--llm", default=None, help="Vicuna-7B folder or hub id to record in the config")
    p.add_argument("--encoder-path", default=None, help="MERT-v1-330M folder or hub id to record")
    p.add_argument("--load", action="store_true", help="load the written folder once to check it")

    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return parser


def _unoptional(hint):
    """``X | None`` -> ``X`` (other hints unchanged), for building flags from type hints."""
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _kind_count(text: str) -> tuple[str, int]:
    """``key=2`` -> ("key", 2), for dict-valued train options given as flags."""
    kind, sep, n = text.partition("=")
    if not sep or not kind or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected KIND=N with N >= 0, got {text!r}")
    return kind, int(n)


class _KindCounts(argparse.Action):
    """``--qa-oversample key=2 tempo=1`` -> {"key": 2, "tempo": 1}."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, dict(values))


def _add_train_command(sub) -> None:
    """``train``: every TrainConfig field is a flag; a YAML recipe sets the same keys."""
    import dataclasses
    import typing

    from musilingo.train import TrainConfig, train_command

    p = sub.add_parser("train", help="train the projection (and LoRA) from a YAML recipe and/or flags")
    p.add_argument("--recipe", default=None, help="YAML recipe (a dump of these options)")
    p.add_argument("--print-recipe", action="store_true", help="print the resulting recipe and exit")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        base = _unoptional(hints[f.name])
        if typing.get_origin(base) in (list, tuple):
            inner = typing.get_args(base)[0] if typing.get_args(base) else str
            p.add_argument(flag, nargs="+", type=inner, default=None)
        elif base is bool:
            p.add_argument(flag, type=lambda v: v.lower() in ("1", "true", "yes"), default=None,
                           metavar="{true,false}")
        elif typing.get_origin(base) is dict:
            p.add_argument(flag, nargs="+", type=_kind_count, default=None, metavar="KIND=N",
                           action=_KindCounts)
        else:
            p.add_argument(flag, type=base, default=None)
    p.set_defaults(func=train_command)


def _function_parser(sub, name: str, func_path: str, help: str, positional: tuple[str, ...] = (),
                     rename: dict[str, str] | None = None):
    """A subcommand whose flags are the typed parameters of a library function.

    ``func_path`` is "module:function", imported when the parser is built (its signature is the
    CLI). Parameters without defaults become positionals.
    """
    import importlib
    import inspect
    import typing

    mod_name, fn_name = func_path.split(":")
    func = getattr(importlib.import_module(mod_name), fn_name)
    p = sub.add_parser(name, help=help, description=(func.__doc__ or help).strip().split("\n")[0])
    hints = typing.get_type_hints(func)
    rename = rename or {}
    for pname, param in inspect.signature(func).parameters.items():
        base = _unoptional(hints.get(pname, str))
        dest = dict(dest=pname)
        if param.default is inspect.Parameter.empty or pname in positional:
            p.add_argument(pname, type=base if base in (int, float) else str)
            continue
        flag = "--" + rename.get(pname, pname).replace("_", "-")
        if base is bool:
            if param.default:
                p.add_argument("--no-" + flag[2:], action="store_false", **dest)
            else:
                p.add_argument(flag, action="store_true", **dest)
        elif typing.get_origin(base) is list:
            inner = (typing.get_args(base) or (str,))[0]
            p.add_argument(flag, nargs="+", type=inner, default=param.default, **dest)
        else:
            p.add_argument(flag, type=base if base in (int, float) else str, default=param.default,
                           help=f"default: {param.default}", **dest)
    p.set_defaults(func=func)
    return p


def _add_data_commands(sub) -> None:
    p = sub.add_parser("data", help="make or import datasets: render, convert, instruct")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    _function_parser(dsub, "render", "musilingo.data.render:render_command",
                     "render the training corpus with known truth (music21, ABC, MMA via FluidSynth)")
    _function_parser(dsub, "convert", "musilingo.data.loaders:convert_command",
                     "convert MusicCaps/MusicInstruct/MusicQA/LP-MusicCaps files to a manifest")
    _function_parser(dsub, "instruct", "musilingo.data.instruct:instruct_command",
                     "generate MusicInstruct-style Q&A from captions with an LLM")


def _add_score_and_features(sub) -> None:
    _function_parser(sub, "score", "musilingo.metrics.score:score_command",
                     "score predictions against references (lpmc, mullama, coco, attributes)")
    _function_parser(sub, "features", "musilingo.features:features_command",
                     "fill the pooled-feature cache for a manifest (resumable)")


def _add_eval(sub) -> None:
    from musilingo.evaluate.run import add_eval_command

    add_eval_command(sub)


def _add_serve(sub) -> None:
    from musilingo.serve.command import add_serve_command

    add_serve_command(sub)


def cmd_demo(model: str = "default", device: str | None = None) -> int:
    """Caption the example clip shipped with the package and ask it two questions."""
    from importlib.resources import files

    clip = files("musilingo") / "assets" / "example.ogg"
    truth = json.loads((files("musilingo") / "assets" / "example.json").read_text())
    m = _load_model(model, device)
    print(f"example clip: {clip} ({truth['duration_s']} s)")
    print(f"truth: {truth['style']} in {truth['meter']}, {truth['key_tonic']} {truth['key_mode']}, "
          f"{truth['tempo_bpm']:.0f} bpm, {', '.join(truth['instruments'])}, "
          f"{'with' if truth['drums'] else 'no'} drums")
    print(f"caption: {m.caption(str(clip)).text}")
    for q in ("What is the tempo of this music?", "Which instruments are playing?"):
        print(f"Q: {q}\nA: {m.ask(str(clip), q).text}")
    return EXIT_OK


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="caption and question the example clip shipped with the package")
    p.add_argument("--model", default="default")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_demo)


_EXTRA_COMMANDS: list = [_add_demo, _add_train_command, _add_data_commands, _add_score_and_features,
                         _add_eval, _add_serve]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        for name in ("transformers", "huggingface_hub", "accelerate"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="transformers")
    kwargs = {k: v for k, v in vars(args).items()
              if k not in ("command", "verbose", "func", "data_command")}
    try:
        if args.command == "caption":
            from musilingo.prompts import CAPTION_INSTRUCTION

            return cmd_answer(kwargs.pop("inputs"), CAPTION_INSTRUCTION, **kwargs)
        if args.command == "ask":
            return cmd_answer([kwargs.pop("path")], kwargs.pop("question"), **kwargs)
        if args.command == "chat":
            return cmd_chat(**kwargs)
        if args.command == "convert":
            return cmd_convert(**kwargs)
        result = args.func(**kwargs)
        if isinstance(result, dict):  # score/report style commands return their results
            print(json.dumps(result, indent=2, default=str))
            return EXIT_OK
        return result if isinstance(result, int) else EXIT_OK
    except MusiLingoError as e:
        _err(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted; finished outputs are kept, rerun the same command to resume")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
