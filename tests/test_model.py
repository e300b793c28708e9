"""The inference object: batching, long files, chat, saving and loading (tiny random model)."""

import json
import warnings

import pytest
import torch

from musilingo.errors import CheckpointError
from musilingo.model import GenerationOptions, MusiLingo, UntrainedModelWarning
from musilingo.prompts import Turn

from conftest import SR, tone


def test_greedy_batch_equals_one_by_one(tiny_model):
    clips = [(tone(s, SR, f, seed=i), SR, f"c{i}") for i, (s, f) in enumerate([(10, 440), (3, 220), (7, 330)])]
    batched = tiny_model.caption(clips, batch_size=3)
    single = [tiny_model.caption(c) for c in clips]
    assert [a.text for a in batched] == [b.text for b in single]
    assert all(a.text for a in batched)


def test_iter_answers_decodes_the_next_group_on_a_thread_and_keeps_order(tiny_model, tmp_path,
                                                                          monkeypatch):
    import threading

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    items = [(tone(2 + i % 3, SR, 200 + 50 * i, seed=i), SR, f"c{i}") for i in range(5)]
    items.insert(3, str(bad))
    threads = []
    decode_all = tiny_model._decode_all

    def recording(group, max_duration_s):
        threads.append(threading.current_thread().name)
        return decode_all(group, max_duration_s)

    monkeypatch.setattr(tiny_model, "_decode_all", recording)
    got = list(tiny_model.iter_answers(items, "Describe the music.", batch_size=2))
    monkeypatch.undo()
    assert [i for i, _ in got] == list(range(6))
    assert len(threads) == 3 and all(t.startswith("musilingo-decode") for t in threads)
    assert got[3][1].error and "empty" in got[3][1].error
    # the same answers as one file at a time, straight through prepare()
    single = [tiny_model.ask(item, "Describe the music.") for item in items]
    assert [a.text for _, a in got] == [a.text for a in single]
    # a consumer that stops early does not leave a decode thread behind
    it = tiny_model.iter_answers(items, "Describe the music.", batch_size=2)
    next(it)
    it.close()
    assert not any(t.name.startswith("musilingo-decode") for t in threading.enumerate())


def test_audio_changes_the_answer_path(tiny_model):
    f1 = tiny_model.pooled_features([tone(5, SR, 440)])
    f2 = tiny_model.pooled_features([tone(5, SR, 1000)])
    assert f1[0].shape == (2, 32) and not torch.allclose(f1[0], f2[0])
    b = tiny_model.build_inputs(f1, [[Turn("Q?")]])
    audio = tiny_model.projector(f1[0])
    pos = (b["attention_mask"][0] == 1).nonzero()[0].item()
    emb = b["inputs_embeds"][0]
    # the projected audio tokens sit inside the prompt embeddings
    assert any(torch.allclose(emb[i], audio[0]) for i in range(pos, emb.shape[0]))


def test_long_file_gives_windows_and_whole_track(tiny_model):
    x = tone(65, SR)
    ans = tiny_model.caption((x, SR, "long"), batch_size=4)
    assert [(w.start_s, w.end_s) for w in ans.windows] == [(0.0, 30.0), (30.0, 60.0), (60.0, 65.0)]
    assert ans.text is not None and ans.end_s == 65.0
    assert all(w.text is not None for w in ans.windows)


def test_bad_input_is_reported_not_raised(tiny_model, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    res = tiny_model.caption([(tone(2), SR, "ok"), str(bad), str(tmp_path / "missing.flac")])
    assert res[0].error is None and res[0].text is not None
    assert "empty" in res[1].error and res[1].source.endswith("bad.wav")
    assert "no such file" in res[2].error


def test_chat_keeps_history(tiny_model):
    chat = tiny_model.start_chat((tone(4), SR, "c"))
    r1 = chat.ask("What instruments?", GenerationOptions(max_new_tokens=4))
    r2 = chat.ask("And the tempo?", GenerationOptions(max_new_tokens=4))
    assert isinstance(r1, str) and isinstance(r2, str)
    assert [t.question for t in chat.turns] == ["What instruments?", "And the tempo?"]
    assert chat.turns[0].answer == r1


def test_decoding_presets():
    assert GenerationOptions.named("paper").temperature == 0.1
    assert GenerationOptions.named("paper").top_p == 0.5
    assert GenerationOptions.named("paper").max_new_tokens == 300
    assert GenerationOptions.named("beam").num_beams == 4


def test_beam_and_sampling_run(tiny_model):
    f = tiny_model.pooled_features([tone(2)])
    assert isinstance(tiny_model.generate(f, [[Turn("Q")]], GenerationOptions(max_new_tokens=3, num_beams=2))[0], str)
    assert isinstance(tiny_model.generate(f, [[Turn("Q")]], GenerationOptions.named("paper", 3))[0], str)


def test_save_and_load_round_trip(tiny_model, tmp_path):
    with torch.no_grad():
        tiny_model.projector.net[0].weight.add_(0.5)
    try:
        tiny_model.config.trained = True
        tiny_model.save_pretrained(tmp_path / "m")
        files = sorted(p.name for p in (tmp_path / "m").iterdir())
        assert files == ["config.json", "projector.safetensors"]
        cfg = json.loads((tmp_path / "m" / "config.json").read_text())
        assert cfg["prompt_style"] == "musilingo" and cfg["projector"]["kind"] == "linear"
        again = MusiLingo.from_pretrained(str(tmp_path / "m"))
        torch.testing.assert_close(again.projector.net[0].weight, tiny_model.projector.net[0].weight)
        clip = (tone(3), SR, "c")
        assert again.caption(clip).text == tiny_model.caption(clip).text
    finally:
        tiny_model.config.trained = False
        with torch.no_grad():
            tiny_model.projector.net[0].weight.sub_(0.5)


def test_untrained_warning():
    with pytest.warns(UntrainedModelWarning, match="UNTRAINED"):
        MusiLingo.from_pretrained("tiny")


def test_bad_model_folders(tiny_model, tmp_path):
    with pytest.raises(CheckpointError, match="not a model folder or a preset"):
        MusiLingo.from_pretrained(str(tmp_path / "nothing"))
    (tmp_path / "a").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        MusiLingo.from_pretrained(str(tmp_path / "a"))
    (tmp_path / "a" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        MusiLingo.from_pretrained(str(tmp_path / "a"))
    (tmp_path / "a" / "config.json").write_text(json.dumps({"encoder": {"name": "nope"}}))
    with pytest.raises(CheckpointError, match="unknown encoder"):
        MusiLingo.from_pretrained(str(tmp_path / "a"))
    # a projector of the wrong shape names both shapes
    tiny_model.save_pretrained(tmp_path / "b")
    from safetensors.torch import save_file

    save_file({"net.0.weight": torch.zeros(64, 16), "net.0.bias": torch.zeros(64)},
              str(tmp_path / "b" / "projector.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CheckpointError, match=r"shape \(64, 16\).*\(64, 32\)"):
            MusiLingo.from_pretrained(str(tmp_path / "b"))
    (tmp_path / "b" / "projector.safetensors").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CheckpointError, match="not a readable safetensors"):
            MusiLingo.from_pretrained(str(tmp_path / "b"))


def test_loss_only_on_answer_and_backprop_reaches_projector(tiny_model):
    f = tiny_model.pooled_features([tone(3), tone(5, freq=300)])
    b = tiny_model.build_inputs(f, [[Turn("Q?", "A slow waltz.")], [Turn("Key?", "G major.")]],
                                padding_side="right")
    n_answer = (b["labels"] != -100).sum(dim=1).tolist()
    tok = tiny_model.tokenizer
    assert n_answer == [len(tok.encode("A slow waltz.###", add_special_tokens=False)),
                        len(tok.encode("G major.###", add_special_tokens=False))]
    tiny_model.projector.requires_grad_(True)
    loss = tiny_model.loss(f, [[Turn("Q?", "A slow waltz.")], [Turn("Key?", "G major.")]])
    loss.backward()
    assert tiny_model.projector.net[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_model.llm.parameters())
    tiny_model.projector.zero_grad(set_to_none=True)
    tiny_model.projector.requires_grad_(False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inference_matches_cpu(tiny_model):
    clips = [(tone(s, SR, f, seed=i), SR, f"c{i}") for i, (s, f) in enumerate([(10, 440), (3, 220), (7, 330)])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = MusiLingo.from_pretrained("tiny", device="cuda")
    assert gpu.device.type == "cuda"
    for a, b in zip(gpu.pooled_features([c[0] for c in clips]), tiny_model.pooled_features([c[0] for c in clips])):
        torch.testing.assert_close(a.float().cpu(), b.float(), atol=1e-3, rtol=1e-3)
    batched = gpu.caption(clips, batch_size=3)
    single = [gpu.caption(c) for c in clips]
    assert all(r.error is None and r.text for r in batched)
    assert [a.text for a in batched] == [b.text for b in single]


def test_summary_token_is_a_projection_of_the_clip_mean(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MusiLingo.from_pretrained("tiny", overrides={"projector": {"summary_token": True}})
    f = m.pooled_features([tone(5, SR, 440), tone(9, SR, 300)])
    n = [len(x) for x in f]
    tokens = m.projector.project_clips(f)
    assert tokens.shape == (sum(n) + 2, 64)
    # each clip: its frame tokens, then summary(mean of its features)
    torch.testing.assert_close(tokens[: n[0]], m.projector(f[0]))
    torch.testing.assert_close(tokens[n[0]], m.projector.summary(f[0].mean(0)))
    torch.testing.assert_close(tokens[n[0] + 1: n[0] + 1 + n[1]], m.projector(f[1]))
    torch.testing.assert_close(tokens[-1], m.projector.summary(f[1].mean(0)))
    # the prompt holds one audio slot more per clip, filled in that order
    b = m.build_inputs(f[:1], [[Turn("Q?")]])
    emb = b["inputs_embeds"][0]
    rows = [i for i in range(emb.shape[0]) if torch.allclose(emb[i], tokens[n[0]])]
    assert len(rows) == 1 and torch.allclose(emb[rows[0] - 1], tokens[n[0] - 1])
    # no audio at all (the no-audio baseline): no tokens, so no NaN summary of zero frames
    empty = torch.zeros(0, f[0].shape[1])
    assert m.projector.project_clips([empty, f[0]]).shape == (n[0] + 1, 64)
    b = m.build_inputs([empty], [[Turn("Q?")]])
    assert torch.isfinite(b["inputs_embeds"]).all()
    assert int(b["attention_mask"].sum()) == len(m.prompt.render([Turn("Q?")], m.tokenizer, n_audio=0))
    # gradients reach the summary projection; save/load keeps it; a plain projector is refused
    m.projector.requires_grad_(True)
    m.loss(f, [[Turn("Q?", "G major.")], [Turn("Q?", "A waltz.")]]).backward()
    assert m.projector.summary.weight.grad.abs().sum() > 0
    m.config.trained = True
    m.save_pretrained(tmp_path / "s")
    again = MusiLingo.from_pretrained(str(tmp_path / "s"))
    torch.testing.assert_close(again.projector.project_clips(f), tokens)
    clip = (tone(3), SR, "c")
    assert again.caption(clip).text == m.caption(clip).text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = MusiLingo.from_pretrained("tiny")
    plain.save_pretrained(tmp_path / "p")
    (tmp_path / "s" / "projector.safetensors").write_bytes((tmp_path / "p" / "projector.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="with summary token"):
        MusiLingo.from_pretrained(str(tmp_path / "s"))
