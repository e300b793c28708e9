"""The ``musilingo`` console script: one command whose subcommands are typed functions.

:data:`COMMANDS` names each subcommand's function ("module:function") and one-line summary; only
the chosen command's module is imported, so ``musilingo --help`` loads no torch. The function's
signature and docstring are its command line (:mod:`musilingo.cli.parser`); tests call the
functions directly. The model-facing commands are in :mod:`musilingo.cli.commands`, the others
beside the library code they drive.

Exit codes scripts can rely on:

- 0: everything succeeded
- 1: the job ran but some inputs failed (each failure is reported with its file and problem)
- 2: the command could not run (bad arguments or values, missing model, malformed manifest or
  checkpoint, or an unexpected error: one line, the traceback only with ``--verbose``)
- 130: interrupted (finished outputs are kept; rerun to resume)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings

from musilingo import __version__
from musilingo.cli.commands import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from musilingo.errors import MusiLingoError

__all__ = ["COMMANDS", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PARTIAL", "main"]

# name -> ("module:function", summary), or name -> {subname: (...)} for a group of commands.
COMMANDS: dict = {
    "caption": ("musilingo.cli.commands:caption", "caption audio files, folders or manifests"),
    "ask": ("musilingo.cli.commands:ask", "ask a question about audio files"),
    "chat": ("musilingo.cli.commands:chat", "interactive multi-turn chat about one audio file"),
    "demo": ("musilingo.cli.commands:demo",
             "caption and question the example clip shipped with the package"),
    "convert": ("musilingo.cli.commands:convert",
                "import a released MusiLingo checkpoint into a model folder"),
    "train": ("musilingo.train:train_command",
              "train the projection (and LoRA) from a YAML recipe and/or flags"),
    "eval": ("musilingo.evaluate:eval_command",
             "evaluate a model on a manifest split and write a report"),
    "score": ("musilingo.metrics.score:score_command",
              "score predictions against references (lpmc, mullama, coco, attributes)"),
    "features": ("musilingo.cli.commands:features_command",
                 "fill the pooled-feature cache for a manifest (resumable)"),
    "serve": ("musilingo.serve.command:serve_command", "HTTP API and browser page for one model"),
    "analyze": ("musilingo.cli.commands:analyze_command",
                "measure tempo, beats, meter, key, loudness and tags of audio files"),
    "data": {
        "render": ("musilingo.data.render:render_command",
                   "render the training corpus with known truth "
                   "(music21, ABC, MMA via FluidSynth)"),
        "convert": ("musilingo.data.loaders:convert_command",
                    "convert MusicCaps/MusicInstruct/MusicQA/LP-MusicCaps files to a manifest"),
        "instruct": ("musilingo.data.instruct:instruct_command",
                     "generate MusicInstruct-style Q&A from captions with an LLM"),
        "real-music": ("musilingo.data.realmusic:real_music_command",
                       "pseudo-label real recordings from Debian packages "
                       "(measured facts + tagger tags -> captions and Q&A)"),
    },
}
GROUP_HELP = {"data": "make or import datasets: render, convert, instruct, real-music"}


def _err(msg: str) -> None:
    print(f"musilingo: {msg}", file=sys.stderr)


def _add_verbose(p: argparse.ArgumentParser, default=False) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log progress details and show the traceback of unexpected errors")


def _chosen(argv: list[str]) -> list[str]:
    """The command words of ``argv`` (e.g. ["data", "render"]), before parsing."""
    words = [a for a in argv if not a.startswith("-")]
    if words and isinstance(COMMANDS.get(words[0]), dict):
        return words[:2]
    return words[:1]


def _fill(p: argparse.ArgumentParser, target: str) -> None:
    """Add the arguments of the function ``target`` names to its (empty) subparser ``p``."""
    from musilingo.cli.parser import add_function_arguments, command_doc, resolve

    func = resolve(target)
    p.description = command_doc(func)[1]
    add_function_arguments(p, func)
    p.set_defaults(_func=func)


def build_parser(argv: list[str] | None = None, fill_all: bool = False) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` is imported (every one with ``fill_all``)."""
    words = _chosen(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(
        prog="musilingo", description="MusiLingo: captions and answers about music audio, "
        "from a frozen music encoder, a trained projection and a frozen LLM.")
    parser.add_argument("--version", action="version", version=f"musilingo {__version__}")
    _add_verbose(parser)
    sub = parser.add_subparsers(dest="_command", required=True, metavar="COMMAND")
    formatter = argparse.RawDescriptionHelpFormatter
    for name, entry in COMMANDS.items():
        if isinstance(entry, dict):
            p = sub.add_parser(name, help=GROUP_HELP[name], description=GROUP_HELP[name])
            _add_verbose(p, default=argparse.SUPPRESS)
            dsub = p.add_subparsers(dest="_subcommand", required=True, metavar="COMMAND")
            for subname, (target, summary) in entry.items():
                sp = dsub.add_parser(subname, help=summary, description=summary,
                                     formatter_class=formatter)
                _add_verbose(sp, default=argparse.SUPPRESS)
                if fill_all or words == [name, subname]:
                    _fill(sp, target)
            continue
        target, summary = entry
        p = sub.add_parser(name, help=summary, description=summary, formatter_class=formatter)
        _add_verbose(p, default=argparse.SUPPRESS)
        if fill_all or words[:1] == [name]:
            _fill(p, target)
    return parser


def _quiet_libraries() -> None:
    """Hide library chatter unless --verbose (the weight-loading bar: ``llm.quiet_loading``)."""
    for name in ("transformers", "huggingface_hub", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="transformers")


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    from musilingo.cli.parser import call_command

    args = build_parser(argv).parse_args(argv)
    verbose = args.verbose
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        _quiet_libraries()
    values = {k: v for k, v in vars(args).items()
              if k not in ("_command", "_subcommand", "_func", "_as_json", "verbose")}
    try:
        result = call_command(args._func, values)
        if isinstance(result, dict):  # score-style commands return their results
            as_json = getattr(args, "_as_json", False)
            print(json.dumps(result, default=str, indent=None if as_json else 2))
            return EXIT_OK
        return result if isinstance(result, int) else EXIT_OK
    except MusiLingoError as e:
        _err(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted; finished outputs are kept, rerun the same command to resume")
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug in musilingo or a library: one line, unless --verbose
        if verbose:
            raise
        first = (str(e).strip().splitlines() or [""])[0]
        _err(f"internal error: {type(e).__name__}: {first} "
             "(rerun with --verbose for the traceback)")
        return EXIT_ERROR
