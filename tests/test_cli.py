"""The console script: complete help for every subcommand, a light ``--help``, runs with the tiny
preset (caption, ask, chat, demo, convert), JSON output, resume, exit codes and one-line errors."""

import argparse
import io
import json
import subprocess
import sys

import pytest

from musilingo.cli import COMMANDS, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, build_parser, main

HEAVY = ("torch", "numpy", "scipy", "transformers")


def _command_words() -> list[list[str]]:
    words = []
    for name, entry in COMMANDS.items():
        words += [[name, sub] for sub in entry] if isinstance(entry, dict) else [[name]]
    return words


def _subparser(words: list[str]) -> argparse.ArgumentParser:
    p = build_parser(words)
    for w in words:
        action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        p = action.choices[w]
    return p


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "musilingo.cli", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0
    for cmd in COMMANDS:
        assert cmd in out.stdout


@pytest.mark.parametrize("words", _command_words(), ids=" ".join)
def test_every_flag_has_help_and_every_command_a_description(words, capsys):
    p = _subparser(words)
    assert p.description and p.description.strip()
    missing = [a.option_strings or [a.dest] for a in p._actions
               if not (a.help and a.help.strip() and a.help != argparse.SUPPRESS)]
    assert not missing, f"musilingo {' '.join(words)}: no help for {missing}"
    with pytest.raises(SystemExit) as e:
        main([*words, "--help"])
    assert e.value.code == 0
    assert "usage: musilingo " + " ".join(words) in capsys.readouterr().out


@pytest.mark.parametrize("words, flag, choices", [
    (["score"], "--protocol", {"lpmc", "mullama", "coco", "attributes"}),
    (["eval"], "--protocols", {"lpmc", "mullama", "coco", "attributes"}),
    (["eval"], "--task", {"caption", "qa", "attributes"}),
    (["eval"], "--decoding", {"greedy", "paper", "beam"}),
    (["caption"], "--decoding", {"greedy", "paper", "beam"}),
    (["ask"], "--decoding", {"greedy", "paper", "beam"}),
    (["chat"], "--decoding", {"greedy", "paper", "beam"}),
    (["serve"], "--decoding", {"greedy", "paper", "beam"}),
    (["serve"], "--precision", {"auto", "float32", "bfloat16", "int8", "int8-dynamic"}),
    (["eval"], "--precision", {"auto", "float32", "bfloat16", "int8", "int8-dynamic"}),
])
def test_choices_are_listed(words, flag, choices):
    from musilingo.generation import DECODINGS, GenerationOptions

    action = next(a for a in _subparser(words)._actions if flag in a.option_strings)
    assert set(action.choices) == choices
    if flag == "--decoding":  # the one list of decodings, every one a preset the model knows
        assert tuple(action.choices) == DECODINGS
        for name in choices:
            GenerationOptions.named(name)


@pytest.mark.parametrize("argv", [["--help"], ["caption", "--help"], ["ask", "--help"],
                                  ["chat", "--help"], ["demo", "--help"], ["convert", "--help"],
                                  ["score", "--help"], ["serve", "--help"], ["train", "--help"],
                                  ["eval", "--help"], ["data", "--help"], ["features", "--help"],
                                  ["analyze", "--help"]])
def test_help_imports_no_heavy_library(argv):
    code = ("import sys\nfrom musilingo.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n"
            "    pass\nprint([m for m in %r if m in sys.modules], file=sys.stderr)" % (argv, HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: musilingo" in out.stdout
    assert out.stderr.strip() == "[]", f"musilingo {' '.join(argv)} imported {out.stderr}"


def test_bad_numbers_give_one_line_and_exit_2(capsys):
    for argv in (["caption", "x.wav", "--batch-size", "0"],
                 ["caption", "x.wav", "--window", "-1"],
                 ["ask", "x.wav", "Key?", "--max-new-tokens", "0"],
                 ["chat", "x.wav", "--max-new-tokens", "0"],
                 ["serve", "--max-batch", "0"]):
        assert main(argv) == EXIT_ERROR, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("musilingo: ") and "Traceback" not in err


def test_unexpected_error_is_one_line_exit_2_and_traceback_with_verbose(monkeypatch, capsys):
    from musilingo.cli import commands

    def broken(inputs):
        raise ValueError("something broke\nsecond line")

    monkeypatch.setattr(commands, "expand_inputs", broken)
    assert main(["caption", "x.wav", "--model", "tiny"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == ("musilingo: internal error: ValueError: something broke "
                   "(rerun with --verbose for the traceback)\n")
    with pytest.raises(ValueError):
        main(["--verbose", "caption", "x.wav", "--model", "tiny"])


def test_interrupt_exits_130(monkeypatch, capsys):
    from musilingo.cli import commands

    def interrupted(inputs):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "expand_inputs", interrupted)
    assert main(["caption", "x.wav"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_caption_run_with_tiny_preset(wav_factory, capsys):
    a = wav_factory("a.wav", 2.0)
    b = wav_factory("b.flac", 3.0, freq=300)
    assert main(["caption", str(a), str(b), "--model", "tiny", "--json",
                 "--max-new-tokens", "4"]) == EXIT_OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in rows] == [str(a), str(b)]
    assert all(r["scope"] == "track" and r["text"] is not None for r in rows)


def test_folder_input_bad_file_and_exit_code(tmp_path, wav_factory, capsys):
    wav_factory("good.wav", 1.0)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    code = main(["caption", str(tmp_path), "--model", "tiny", "--max-new-tokens", "2"])
    captured = capsys.readouterr()
    assert code == EXIT_PARTIAL
    assert "broken.wav" in captured.err and "Traceback" not in captured.err
    assert "good.wav" in captured.out


def test_resume_skips_finished_files(tmp_path, wav_factory, capsys):
    a, b = wav_factory("a.wav", 1.0), wav_factory("b.wav", 1.0)
    out = tmp_path / "out.jsonl"
    assert main(["caption", str(a), "--model", "tiny", "--out", str(out), "--max-new-tokens", "2"]) == 0
    with open(out, "a") as f:
        f.write('{"scope": "track", "sour')  # a line torn by a kill
    assert main(["caption", str(a), str(b), "--model", "tiny", "--out", str(out), "--max-new-tokens", "2"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["source"] for r in rows] == [str(a), str(b)]
    assert "resuming: 1 of 2" in capsys.readouterr().err


def test_errors_give_exit_2_without_traceback(tmp_path, capsys):
    assert main(["caption", "x.wav", "--model", str(tmp_path / "nomodel")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "not a model folder or a preset" in err and "Traceback" not in err
    bad = tmp_path / "m.jsonl"
    bad.write_text("{broken\n")
    assert main(["caption", str(bad), "--model", "tiny"]) == EXIT_ERROR
    assert "m.jsonl:1: not valid JSON" in capsys.readouterr().err


def test_ask_and_chat(wav_factory, monkeypatch, capsys):
    a = wav_factory("a.wav", 2.0)
    assert main(["ask", str(a), "What is the tempo?", "--model", "tiny", "--json", "--max-new-tokens", "3"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["question"] == "What is the tempo?"
    monkeypatch.setattr(sys, "stdin", io.StringIO("Key?\nTempo?\nexit\n"))
    assert main(["chat", str(a), "--model", "tiny", "--max-new-tokens", "3"]) == EXIT_OK
    assert capsys.readouterr().out.count("musilingo> ") == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("Key?\nTempo?\n"))
    assert main(["chat", str(a), "--model", "tiny", "--max-new-tokens", "3", "--json"]) == EXIT_OK
    turns = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [t["question"] for t in turns] == ["Key?", "Tempo?"]
    assert all(isinstance(t["answer"], str) for t in turns)


def test_demo_prints_the_caption_and_two_answers(capsys):
    from musilingo.cli.commands import DEMO_QUESTIONS

    assert main(["demo", "--model", "tiny"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "example clip:" in out and "truth: waltz" in out and "caption: " in out
    # the measured facts (musilingo analyze, real) next to the truth
    (measured,) = [line for line in out.splitlines() if line.startswith("measured: ")]
    assert " bpm (" in measured and "tags: " in measured
    # the example's chords (G Em C D, three times: scripts/make_example_clip.py)
    assert "chords: G Em C D G Em C D G Em C D" in out.splitlines()
    assert [line[3:] for line in out.splitlines() if line.startswith("Q: ")] == list(DEMO_QUESTIONS)
    assert sum(line.startswith("A: ") for line in out.splitlines()) == 2
    assert main(["demo", "--model", "tiny", "--json"]) == EXIT_OK
    (line,) = capsys.readouterr().out.splitlines()
    obj = json.loads(line)
    assert obj["truth"]["style"] == "waltz" and isinstance(obj["caption"], str)
    assert obj["measured"] == "Measured: " + measured.removeprefix("measured: ")
    assert obj["chords"] == ["G", "Em", "C", "D"] * 3
    assert [a["question"] for a in obj["answers"]] == list(DEMO_QUESTIONS)


def test_convert_command(tmp_path, capsys):
    import torch

    torch.save({"model": {"llama_proj.weight": torch.zeros(4096, 1024), "llama_proj.bias": torch.zeros(4096)}},
               tmp_path / "c.pth")
    assert main(["convert", str(tmp_path / "c.pth"), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "projector.safetensors").is_file()
    assert main(["convert", str(tmp_path / "c.pth"), "--out", str(tmp_path / "m2"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"model": str(tmp_path / "m2")}
    (tmp_path / "bad.pth").write_bytes(b"x")
    assert main(["convert", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "n")]) == EXIT_ERROR


def test_score_json_is_one_line(tmp_path, capsys):
    pairs = tmp_path / "p.jsonl"
    row = {"prediction": "a slow waltz", "ground_truth": "a slow waltz"}
    pairs.write_text(json.dumps(row) + "\n")
    assert main(["score", str(pairs), "--protocol", "mullama", "--no-bertscore", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["n"] == 1
