"""Exact prompt strings and loss masks for every style."""

import pytest

from musilingo.llm import tiny_tokenizer
from musilingo.prompts import AUDIO_SLOT, Turn, get_prompt_style


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _answer_text(tok, r):
    return tok.decode([i for i, m in zip(r.ids, r.loss_mask) if m])


def test_musilingo_style_exact_string_and_masks(tok):
    style = get_prompt_style("musilingo")
    r = style.render([Turn("Please give a caption to the music.", "A calm waltz.")], tok, n_audio=3)
    assert r.text == ("###Human: <Audio><AudioHere></Audio> Please give a caption to the music. "
                      "###Assistant: A calm waltz.###")
    assert r.ids[0] == tok.bos_token_id and not r.loss_mask[0]
    assert r.ids.count(AUDIO_SLOT) == 3 and sum(r.audio_mask) == 3
    # the audio sits right after "###Human: <Audio>"
    first = r.ids.index(AUDIO_SLOT)
    assert tok.decode(r.ids[1:first]) == "###Human: <Audio>"
    assert tok.decode(r.ids[first + 3:]).startswith("</Audio> Please give")
    assert _answer_text(tok, r) == "A calm waltz.###"
    assert r.loss_mask[-1] and not any(r.loss_mask[: r.ids.index(AUDIO_SLOT) + 3])


def test_musilingo_generation_prompt_has_no_answer(tok):
    r = get_prompt_style("musilingo").render([Turn("What key?")], tok, n_audio=2)
    assert r.text == "###Human: <Audio><AudioHere></Audio> What key? ###Assistant: "
    assert not any(r.loss_mask)


def test_musilingo_multi_turn_audio_only_in_first_turn(tok):
    r = get_prompt_style("musilingo").render(
        [Turn("What key?", "G major."), Turn("And the tempo?", "About 96 bpm."), Turn("Drums?")], tok, 2)
    assert r.text == ("###Human: <Audio><AudioHere></Audio> What key? ###Assistant: G major.###"
                      "Human: And the tempo? ###Assistant: About 96 bpm.###Human: Drums? ###Assistant: ")
    assert r.text.count("<AudioHere>") == 1
    assert _answer_text(tok, r) == "G major.###About 96 bpm.###"


def test_train_last_only(tok):
    r = get_prompt_style("musilingo").render(
        [Turn("Q1", "A1"), Turn("Q2", "A2")], tok, 1, train_last_only=True)
    assert _answer_text(tok, r) == "A2###"


def test_plain_stage1_style_and_caption_cut(tok):
    r = get_prompt_style("plain").render([Turn("", "a slow piano piece in g major")], tok, 3,
                                         max_answer_tokens=2)
    assert r.text == "<AudioHere>a slow piano piece in g major\n"
    assert r.ids[0] == tok.bos_token_id and r.ids[1:4] == [AUDIO_SLOT] * 3
    ans = [i for i, m in zip(r.ids, r.loss_mask) if m]
    assert len(ans) == 2 + len(tok.encode("\n", add_special_tokens=False))
    assert tok.decode(ans).endswith("\n")


def test_chat_style_exact_string(tok):
    style = get_prompt_style("chat", tok)
    r = style.render([Turn("Describe it.", "A waltz."), Turn("Key?")], tok, 2)
    assert r.text == ("<|im_start|>user\n<AudioHere>\nDescribe it.<|im_end|>\n<|im_start|>assistant\n"
                      "A waltz.<|im_end|>\n<|im_start|>user\nKey?<|im_end|>\n<|im_start|>assistant\n")
    assert _answer_text(tok, r) == "A waltz.<|im_end|>"
    assert style.stop_strings == ["<|im_end|>"]
    assert r.ids[0] != tok.bos_token_id  # the template writes its own start


def test_wrong_audio_count_is_an_error(tok):
    style = get_prompt_style("musilingo")
    r = style.render([Turn("Q")], tok, 0)
    assert sum(r.audio_mask) == 0


def test_clean_post_processing():
    s = get_prompt_style("musilingo")
    assert s.clean(" A calm waltz.###Human: next") == "A calm waltz."
    assert s.clean("Assistant: hello###") == "hello"


def test_chat_style_system_message(tok):
    style = get_prompt_style("chat", tok, system="You describe music.")
    r = style.render([Turn("Key?", "G major.")], tok, 1)
    assert r.text == ("<|im_start|>system\nYou describe music.<|im_end|>\n<|im_start|>user\n<AudioHere>\n"
                      "Key?<|im_end|>\n<|im_start|>assistant\nG major.<|im_end|>\n")
    assert _answer_text(tok, r) == "G major.<|im_end|>"
