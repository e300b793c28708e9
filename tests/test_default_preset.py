"""The shipped offline default: real registry components (musicnn, Basic Pitch, SmolLM2) and the
trained projection + LoRA adapter load without a network and answer a question about real audio."""

import json
import subprocess
import warnings
from pathlib import Path

import pytest
import soundfile as sf

from musilingo.config import PRESET_DIR
from musilingo.model import MusiLingo, UntrainedModelWarning
from musilingo.prompts import Turn

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


@pytest.fixture(scope="module")
def default_model():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedModelWarning)  # the shipped default is trained
        return MusiLingo.from_pretrained("default", device="cpu")


def test_shipped_folder_is_self_describing():
    cfg = json.loads((PRESET_DIR / "default" / "config.json").read_text())
    assert cfg["trained"] and "clips" in cfg["trained_on"]
    for name in ("projector.safetensors", "adapter/adapter_model.safetensors", "recipe.yaml",
                 "data_summary.json", "eval-attributes/results.json"):
        assert (PRESET_DIR / "default" / name).is_file(), name


def test_smollm2_chat_prompt_exact_string(default_model):
    r = default_model.prompt.render([Turn("Are there drums?")], default_model.tokenizer, n_audio=3)
    assert r.text == ("<|im_start|>system\nYou describe music you hear.<|im_end|>\n<|im_start|>user\n"
                      "<AudioHere>\nAre there drums?<|im_end|>\n<|im_start|>assistant\n")
    assert default_model.has_lora and default_model.encoder.feature_dim == 1706 + 440


@pytest.mark.skipif(not Path(SF2).is_file(), reason="fluid-soundfont-gm not installed")
def test_hears_drums_on_a_drum_clip_and_none_on_a_piano_clip(default_model, tmp_path):
    import pretty_midi

    def render(name, drums):
        """12 s of piano chords (C-Am-F-G) at 120 bpm, with or without a rock drum kit."""
        pm = pretty_midi.PrettyMIDI(initial_tempo=120)
        piano = pretty_midi.Instrument(program=0)
        for bar, root in enumerate([60, 57, 53, 55] * 2):
            for p in (root, root + 4 if root in (60, 53, 55) else root + 3, root + 7):
                piano.notes.append(pretty_midi.Note(80, p, bar * 2.0, bar * 2.0 + 1.9))
        pm.instruments.append(piano)
        if drums:
            kit = pretty_midi.Instrument(program=0, is_drum=True)
            for k in range(48):
                t = k * 0.25
                kit.notes.append(pretty_midi.Note(100, 42, t, t + 0.1))  # closed hi-hat
                if k % 4 == 0:
                    kit.notes.append(pretty_midi.Note(110, 36 if k % 8 == 0 else 38, t, t + 0.1))
            pm.instruments.append(kit)
        mid, wav = tmp_path / f"{name}.mid", tmp_path / f"{name}.wav"
        pm.write(str(mid))
        subprocess.run(["fluidsynth", "-ni", "-F", str(wav), "-r", "24000", "-g", "0.6", SF2, str(mid)],
                       check=True, capture_output=True, timeout=60)
        x, sr = sf.read(str(wav), dtype="float32")
        return (x.mean(axis=1) if x.ndim == 2 else x, sr, name)

    drums, piano = render("drums", True), render("piano", False)
    a_drums, a_piano = (a.text.lower() for a in default_model.ask([drums, piano], "Are there drums in this music?"))
    assert a_drums.startswith("yes"), a_drums
    assert a_piano.startswith("no"), a_piano
    # the playback level does not matter: inputs are loudness-normalised before the encoder
    # (before that, a quarter of this level lost the drums)
    assert default_model.config.loudness_lufs is not None
    levels = [(drums[0] * g, drums[1], f"drums x{g}") for g in (0.1, 0.25, 3.0)]
    for a in default_model.ask(levels, "Are there drums in this music?"):
        assert a.text.lower().startswith("yes"), a.text


def test_default_decodes_with_llamacpp_where_installed(default_model):
    """The shipped config says runtime auto: llama.cpp when llama-cpp-python is installed (as
    scripts/setup.sh does), torch otherwise."""
    import importlib.util

    cfg = json.loads((PRESET_DIR / "default" / "config.json").read_text())
    assert cfg["inference"]["runtime"] == "auto"
    assert default_model.runtime == ("llama.cpp" if importlib.util.find_spec("llama_cpp") else "torch")
