"""The console script: help, a caption run with the tiny preset, JSON output, resume, exit codes."""

import io
import json
import subprocess
import sys

import pytest

from musilingo.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, cmd_chat, main


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "musilingo.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("caption", "ask", "chat", "convert"):
        assert cmd in out.stdout


@pytest.mark.parametrize("cmd", ["caption", "ask", "chat", "convert"])
def test_subcommand_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: musilingo " + cmd in capsys.readouterr().out


def test_caption_run_with_tiny_preset(wav_factory, capsys):
    a = wav_factory("a.wav", 2.0)
    b = wav_factory("b.flac", 3.0, freq=300)
    assert main(["caption", str(a), str(b), "--model", "tiny", "--json", "--max-new-tokens", "4"]) == EXIT_OK
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


def test_ask_and_chat(wav_factory, capsys):
    a = wav_factory("a.wav", 2.0)
    assert main(["ask", str(a), "What is the tempo?", "--model", "tiny", "--json", "--max-new-tokens", "3"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["question"] == "What is the tempo?"
    out = io.StringIO()
    assert cmd_chat(str(a), model="tiny", max_new_tokens=3, stdin=io.StringIO("Key?\nTempo?\nexit\n"),
                    stdout=out) == EXIT_OK
    assert out.getvalue().count("musilingo> ") == 2


def test_convert_command(tmp_path, capsys):
    import torch

    torch.save({"model": {"llama_proj.weight": torch.zeros(4096, 1024), "llama_proj.bias": torch.zeros(4096)}},
               tmp_path / "c.pth")
    assert main(["convert", str(tmp_path / "c.pth"), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "projector.safetensors").is_file()
    (tmp_path / "bad.pth").write_bytes(b"x")
    assert main(["convert", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "n")]) == EXIT_ERROR
