"""MusicInstruct generation against a real local HTTP server (127.0.0.1) and a tiny local LM."""

from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from musilingo.data.instruct import (
    CaptionItem,
    InstructError,
    OpenAIChatBackend,
    TransformersChatBackend,
    build_messages,
    clean_pairs,
    extract_json_list,
    generate_instruct,
    instruct_command,
    progress_path,
    read_captions,
    read_progress,
)
from musilingo.data.loaders import load_dataset
from musilingo.errors import ConfigError, ManifestError

GOOD = [
    {"question": "What is the mood?", "answer": "Calm and warm.", "length": "short"},
    {"question": "Which instruments play?", "answer": "A guitar and drums.", "length": "short"},
    {"question": "Describe the music.", "answer": "A calm piece for guitar and drums with a "
     "steady beat, played softly. It would fit a quiet afternoon.", "length": "long"},
]


def _caption_of(body: dict) -> str:
    last = body["messages"][-1]["content"]
    return last.split("Caption: ", 1)[1].split("\n\nWrite", 1)[0]


class ScriptedLLM:
    """Replies per caption from a script; records every request it gets."""

    def __init__(self):
        self.requests: list[dict] = []  # {"caption", "auth", "status"}
        self.lock = threading.Lock()
        self.statuses: list[int] = []  # HTTP statuses to return first, in order (then 200)
        self.malformed_first: set[str] = set()  # captions whose first reply is prose only
        self.always_malformed: set[str] = set()
        self.fatal: set[str] = set()  # captions answered with 401 (a misconfigured endpoint)

    def reply(self, body: dict, auth: str | None) -> tuple[int, str]:
        caption = _caption_of(body)
        with self.lock:
            seen = sum(r["caption"] == caption and r["status"] == 200 for r in self.requests)
            status = self.statuses.pop(0) if self.statuses else 200
            if caption in self.fatal:
                status = 401
            self.requests.append({"caption": caption, "auth": auth, "status": status,
                                  "model": body.get("model")})
        if status != 200:
            return status, json.dumps({"error": {"message": f"scripted {status}"}})
        if caption in self.always_malformed or (caption in self.malformed_first and seen == 0):
            content = "Sure! Here are some great questions about this music: what is the mood?"
        else:
            pairs = GOOD + [
                # a duplicate (case and punctuation differ) and an empty answer: both dropped
                {"question": "what is the MOOD", "answer": "Duplicate.", "length": "short"},
                {"question": "Tempo?", "answer": "  ", "length": "short"},
                {"question": f"What does this clip sound like? ({caption[:20]})",
                 "answer": caption, "length": "long"},
            ]
            content = "Here you go:\n```json\n" + json.dumps(pairs, indent=1) + "\n```\nEnjoy!"
        return 200, json.dumps({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content},
             "finish_reason": "stop"}]})

    def calls_for(self, caption: str) -> int:
        return sum(r["caption"] == caption for r in self.requests)


@pytest.fixture
def llm_server():
    script = ScriptedLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, text = script.reply(body, self.headers.get("Authorization"))
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield script
    server.shutdown()
    server.server_close()
    thread.join(5)


def _captions_csv(tmp_path: Path, n: int) -> tuple[Path, list[tuple[str, str]]]:
    rows = [(f"clip{i}", f"Caption number {i}: a calm piece for guitar and drums.")
            for i in range(n)]
    path = tmp_path / "captions.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list",
                    "caption", "author_id", "is_balanced_subset", "is_audioset_eval"])
        for i, (ytid, cap) in enumerate(rows):
            w.writerow([ytid, 0, 10, "", "['calm']", cap, 1, False, i % 2 == 1])
    return path, rows


def test_openai_backend_retries_dedups_and_writes(llm_server, tmp_path):
    _, rows = _captions_csv(tmp_path, 3)
    items = [CaptionItem(y, c, i == 1) for i, (y, c) in enumerate(rows)]
    llm_server.statuses = [429, 500]  # first request rate-limited, the retry hits a 5xx
    llm_server.malformed_first = {rows[0][1]}
    llm_server.always_malformed = {rows[2][1]}
    backend = OpenAIChatBackend(model="scripted", base_url=llm_server.base_url,
                                api_key="sk-test", backoff_s=0.01)
    out = tmp_path / "mi.json"
    result = generate_instruct(items, out, backend, max_retries=2)
    backend.close()

    assert result.done == 2 and result.failed == ["clip2"]
    # clip0: 429, 500, malformed, good = 4 HTTP requests, 2 of them LLM replies
    assert llm_server.calls_for(rows[0][1]) == 4
    assert llm_server.calls_for(rows[2][1]) == 3  # 1 + max_retries, then recorded as failed
    assert result.requests == 2 + 1 + 3
    assert {r["auth"] for r in llm_server.requests} == {"Bearer sk-test"}
    assert {r["model"] for r in llm_server.requests} == {"scripted"}

    data = json.loads(out.read_text())
    clip0 = [q for q in data["QA"] if q["ytid"] == "clip0"]
    questions = [q["question"] for q in clip0]
    assert questions[:3] == [p["question"] for p in GOOD] and len(questions) == 4
    assert "what is the MOOD" not in questions and "Tempo?" not in questions
    assert {q["ytid"] for q in data["QA"]} == {"clip0", "clip1"}
    assert all(q["is_audioset_eval"] == (q["ytid"] == "clip1") for q in data["QA"])
    assert [q["length"] for q in clip0] == ["short", "short", "long", "long"]

    prog = read_progress(progress_path(out))
    assert prog["clip2"]["status"] == "failed" and "no JSON list" in prog["clip2"]["error"]
    assert prog["clip0"]["attempts"] == 2
    # the output reads back with the MusicInstruct loader
    recs = load_dataset(out, check_audio=False)
    assert [r.id for r in recs] == ["clip0", "clip1"] and len(recs[0].qa) == 4
    assert recs[1].split == "test"


def test_instruct_command_resumes_without_duplicate_work(llm_server, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setenv("MUSILINGO_OPENAI_BASE_URL", llm_server.base_url)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    captions, rows = _captions_csv(tmp_path, 5)
    out = tmp_path / "out" / "MusicInstruct.json"

    # run 1 stops after 2 clips (limit)
    assert instruct_command(str(captions), str(out), model="m", limit=2) == 0
    assert len(read_progress(progress_path(out))) == 2
    assert {q["ytid"] for q in json.loads(out.read_text())["QA"]} == {"clip0", "clip1"}

    # run 2 is "killed" at clip3 (the endpoint starts refusing): what was done is kept
    llm_server.fatal = {rows[3][1]}
    with pytest.raises(InstructError, match="HTTP 401"):
        instruct_command(str(captions), str(out), model="m")
    assert {q["ytid"] for q in json.loads(out.read_text())["QA"]} == {"clip0", "clip1", "clip2"}
    # a run killed while appending leaves a broken last line: tolerated
    with open(progress_path(out), "a") as f:
        f.write('{"ytid": "clip3", "sta')

    # run 3 finishes; every clip was asked exactly once with a 200 answer
    llm_server.fatal = set()
    assert instruct_command(str(captions), str(out), model="m") == 0
    for _, cap in rows:
        assert sum(r["caption"] == cap and r["status"] == 200
                   for r in llm_server.requests) == 1, cap
    assert {r["auth"] for r in llm_server.requests} == {None}
    data = json.loads(out.read_text())
    assert [q["ytid"] for q in data["QA"]][::4] == [y for y, _ in rows]  # 4 pairs each, in order
    assert "3 already done" in capsys.readouterr().out
    # nothing left to do: no request at all
    n = len(llm_server.requests)
    assert instruct_command(str(captions), str(out), model="m") == 0
    assert len(llm_server.requests) == n
    assert not list(out.parent.glob(".*.tmp"))


def test_failed_clips_are_retried_only_when_asked(llm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSILINGO_OPENAI_BASE_URL", llm_server.base_url)
    captions, rows = _captions_csv(tmp_path, 2)
    out = tmp_path / "mi.json"
    llm_server.always_malformed = {rows[1][1]}
    assert instruct_command(str(captions), str(out), max_retries=0) == 1
    assert instruct_command(str(captions), str(out), max_retries=0) == 0  # skipped: listed
    assert llm_server.calls_for(rows[1][1]) == 1
    llm_server.always_malformed = set()
    assert instruct_command(str(captions), str(out), retry_failed=True) == 0
    assert {q["ytid"] for q in json.loads(out.read_text())["QA"]} == {"clip0", "clip1"}


def test_extract_and_clean():
    text = 'Sure!\n```json\n[{"question": "Q?", "answer": "A."}]\n```'
    assert extract_json_list(text) == [{"question": "Q?", "answer": "A."}]
    assert extract_json_list('Pairs: [{"question": "Q", "answer": "A"}] done') == [
        {"question": "Q", "answer": "A"}]
    assert extract_json_list('{"pairs": [{"question": "Q", "answer": "A"}]}')[0]["answer"] == "A"
    for bad in ("no json here", "[1, 2, 3]", '[{"question": "Q", "answer": "A"'):
        with pytest.raises(ValueError):
            extract_json_list(bad)
    pairs, dropped = clean_pairs([{"Question": "Is it fast?", "Answer": "Yes."},
                                  {"question": "is it fast", "answer": "Dup."},
                                  {"question": "", "answer": "x"}, "junk",
                                  {"question": "Long?", "answer": "One. Two. Three.",
                                   "length": "medium"}])
    assert dropped == 3 and [p["length"] for p in pairs] == ["short", "long"]


def test_prompt_is_few_shot_json():
    msgs = build_messages("A loud rock song.", n_short=2, n_long=1)
    assert msgs[0]["role"] == "system" and "JSON list" in msgs[0]["content"]
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant"] * 2 + ["user"]
    for m in msgs[2:-1:2]:
        shots = json.loads(m["content"])
        assert {p["length"] for p in shots} == {"short", "long"}
    assert msgs[-1]["content"] == ("Caption: A loud rock song.\n\nWrite 2 short and 1 long "
                                   "question-answer pairs as a JSON list.")


def test_openai_backend_config(monkeypatch):
    monkeypatch.delenv("MUSILINGO_OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIChatBackend()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    b = OpenAIChatBackend(http_retries=1, backoff_s=0.0, timeout_s=2)
    assert b.url == "http://127.0.0.1:9/v1/chat/completions"
    with pytest.raises(InstructError, match="request failed after 2 tries"):
        b.complete([{"role": "user", "content": "hi"}])
    b.close()


def test_read_captions_and_bad_progress(tmp_path):
    captions, _ = _captions_csv(tmp_path, 3)
    items = read_captions(captions)
    assert [i.is_audioset_eval for i in items] == [False, True, False]
    prog = tmp_path / "p.jsonl"
    prog.write_text('{"ytid": "a", "status": "ok"}\nbroken\n{"ytid": "b", "status": "ok"}\n')
    with pytest.raises(ManifestError, match=r"p.jsonl:2: malformed progress line"):
        read_progress(prog)


def _tiny_llama():
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "<s>", "</s>"])
    tok.train_from_iterator(["a calm piece for guitar and drums", "what is the mood ?",
                             '[ { "question" : "answer" } ]', "System: User: Assistant:"],
                            trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                                        pad_token="[PAD]", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, intermediate_size=32,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=4096, pad_token_id=1, bos_token_id=2,
                      eos_token_id=3)
    return LlamaForCausalLM(cfg), tokenizer


def test_transformers_backend_garbage_is_retried_then_failed(tmp_path):
    model, tokenizer = _tiny_llama()
    backend = TransformersChatBackend(model, tokenizer, max_new_tokens=6, temperature=0.0)
    prompt = backend.render(build_messages("A calm piece."))
    assert prompt.startswith("System: ") and prompt.endswith("\n\nAssistant:")
    out = tmp_path / "mi.json"
    items = [CaptionItem("clip0", "a calm piece for guitar and drums")]
    result = generate_instruct(items, out, (model, tokenizer), max_retries=1)
    assert result.failed == ["clip0"] and result.requests == 2 and result.done == 0
    assert json.loads(out.read_text()) == {"QA": []}
    prog = read_progress(progress_path(out))
    assert prog["clip0"]["status"] == "failed" and prog["clip0"]["attempts"] == 2

    tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} "
                               "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    rendered = backend.render([{"role": "user", "content": "hi"}])
    assert rendered == "<user> hi <assistant>"
    assert isinstance(backend.complete([{"role": "user", "content": "hi"}]), str)
