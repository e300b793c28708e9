"""The HTTP service end to end: a real uvicorn server on a free loopback port, the tiny model.

Every endpoint, every limit (upload size, audio duration, queue length, timeout) and the
``/v1/limits`` route that states them, bad files, chat history and expiry, the caption as a chat's
first message (one upload for both), the app mounted under a path prefix with the page's relative
URLs, and 50 concurrent requests that must all be answered in fewer model calls than requests
(batching). Limits are shrunk per test so each one triggers cheaply.
"""

from __future__ import annotations

import asyncio
import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
import soundfile as sf

from conftest import SR, tone
from musilingo.errors import ConfigError
from musilingo.serve import ServeSettings, create_app


def wav_bytes(seconds: float = 2.0, sr: int = SR, freq: float = 440.0, subtype: str = "PCM_16",
              samples: np.ndarray | None = None) -> bytes:
    buf = io.BytesIO()
    data = tone(seconds, sr, freq) if samples is None else samples
    sf.write(buf, data, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


@contextmanager
def running_server(app) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread on a free loopback port; yield its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@contextmanager
def serve(model, **settings) -> Iterator[tuple[str, object]]:
    app = create_app(model, ServeSettings(model="tiny", **settings))
    with running_server(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def server(tiny_model):
    """One server with default limits for the tests that do not change them."""
    with serve(tiny_model) as (url, app):
        yield url, app


def post(url: str, path: str, audio: bytes | None = None, name: str = "clip.wav", **form) -> httpx.Response:
    files = {"file": (name, audio, "audio/wav")} if audio is not None else None
    return httpx.post(url + path, files=files, data=form or None, timeout=60)


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code and body["detail"], body
    assert "/tmp/" not in body["detail"] and "Traceback" not in body["detail"]
    return body


# ---------------------------------------------------------------------------- endpoints
def test_health(server):
    url, _ = server
    h = httpx.get(url + "/health").json()
    assert h["status"] == "ok" and h["model"] == "tiny" and h["device"] == "cpu"
    assert h["trained"] is False and h["uptime_s"] >= 0
    assert h["queue_length"] == 0 and h["max_queue"] == 64
    assert set(h["batches"]) == {"encode", "generate"}


def test_openapi_schema_and_no_cdn_pages(server):
    url, _ = server
    schema = httpx.get(url + "/openapi.json").json()
    assert {"/v1/caption", "/v1/ask", "/v1/chat", "/health"} <= set(schema["paths"])
    assert "413" in schema["paths"]["/v1/caption"]["post"]["responses"]
    assert httpx.get(url + "/docs").status_code == 404  # swagger would load from a CDN
    page = httpx.get(url + "/")
    assert page.status_code == 200 and "<canvas" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        r = httpx.get(url + asset)
        assert r.status_code == 200
        assert "http://" not in r.text and "https://" not in r.text  # nothing external
    assert "https://" not in page.text and "http://" not in page.text


def test_caption(server):
    url, _ = server
    r = post(url, "/v1/caption", wav_bytes(2.0))
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["text"], str) and body["text"]
    assert body["question"] == "Please give a caption to the music."
    assert body["source"] == "clip.wav" and body["duration_s"] == pytest.approx(2.0)
    assert body["windows"] == []
    t = body["timings"]
    assert set(t) == {"decode_ms", "encode_ms", "generate_ms", "total_ms"}
    assert t["total_ms"] >= t["generate_ms"] > 0


def test_ask_long_file_answers_each_window_and_the_whole_track(server, tiny_model):
    url, _ = server
    r = post(url, "/v1/ask", wav_bytes(45.0), question="What is the tempo?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["question"] == "What is the tempo?"
    assert [(w["start_s"], w["end_s"]) for w in body["windows"]] == [(0.0, 30.0), (30.0, 45.0)]
    assert body["text"] and all(w["text"] for w in body["windows"])
    expected = tiny_model.ask((tone(45.0, SR), SR, "x"), "What is the tempo?")
    assert body["text"] == expected.text  # same answers as the Python API
    assert [w["text"] for w in body["windows"]] == [w.text for w in expected.windows]


def test_ask_validates_the_question(server):
    url, _ = server
    assert_error(post(url, "/v1/ask", wav_bytes(1.0), question="   "), 422, "invalid_request")
    assert_error(post(url, "/v1/ask", wav_bytes(1.0)), 422, "invalid_request")  # missing
    assert_error(post(url, "/v1/ask", wav_bytes(1.0), question="x" * 2001), 422, "invalid_request")


def test_chat_keeps_history_across_turns(server):
    url, app = server
    r1 = post(url, "/v1/chat", wav_bytes(2.0), message="What genre is this?")
    assert r1.status_code == 200, r1.text
    first = r1.json()
    cid = first["conversation_id"]
    assert first["turn"] == 1 and first["text"] and first["expires_in_s"] > 0
    r2 = post(url, "/v1/chat", conversation_id=cid, message="And the instruments?")
    assert r2.status_code == 200, r2.text
    assert r2.json()["turn"] == 2 and r2.json()["conversation_id"] == cid
    conv = app.state.service.conversations.get(cid)
    assert [(t.question, t.answer) for t in conv.turns] == [
        ("What genre is this?", first["text"]), ("And the instruments?", r2.json()["text"])]
    assert httpx.delete(f"{url}/v1/chat/{cid}").status_code == 204
    assert_error(post(url, "/v1/chat", conversation_id=cid, message="still there?"), 404,
                 "unknown_conversation")


def test_chat_needs_audio_first_and_only_first(server):
    url, _ = server
    assert_error(post(url, "/v1/chat", message="hello"), 422, "invalid_request")
    cid = post(url, "/v1/chat", wav_bytes(1.0), message="hi").json()["conversation_id"]
    assert_error(post(url, "/v1/chat", wav_bytes(1.0), conversation_id=cid, message="again"),
                 422, "invalid_request")
    assert_error(post(url, "/v1/chat", conversation_id="made-up", message="hi"), 404,
                 "unknown_conversation")


def test_chat_bounds_turns_conversations_and_expires(tiny_model):
    # a long time-to-live here: on a loaded machine a short one expired `a` before `c` came, so
    # `c` took its place instead of evicting `b` (expiry is checked below, on its own server)
    with serve(tiny_model, max_turns=2, max_conversations=2, conversation_ttl_min=10) as (url, app):
        a = post(url, "/v1/chat", wav_bytes(1.0), message="q1").json()["conversation_id"]
        for k in range(2, 5):
            r = post(url, "/v1/chat", conversation_id=a, message=f"q{k}")
            assert r.json()["turn"] == k
        turns = app.state.service.conversations.get(a).turns
        assert [t.question for t in turns] == ["q3", "q4"]  # only the last max_turns kept
        b = post(url, "/v1/chat", wav_bytes(1.0), message="b").json()["conversation_id"]
        post(url, "/v1/chat", conversation_id=a, message="touch a")  # a is now the most recent
        post(url, "/v1/chat", wav_bytes(1.0), message="c")  # evicts b, the least recently used
        assert_error(post(url, "/v1/chat", conversation_id=b, message="b?"), 404, "unknown_conversation")
    with serve(tiny_model, max_conversations=2, conversation_ttl_min=0.02) as (url, app):
        a = post(url, "/v1/chat", wav_bytes(1.0), message="q1").json()["conversation_id"]
        time.sleep(1.3)  # ttl 0.02 min = 1.2 s
        assert_error(post(url, "/v1/chat", conversation_id=a, message="a?"), 404, "unknown_conversation")


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("case", ["empty", "garbage", "nan", "truncated", "text"])
def test_bad_audio_gives_422_json(server, case):
    url, _ = server
    if case == "empty":
        data, words = b"", "empty"
    elif case == "garbage":
        data, words = bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)), "unreadable"
    elif case == "nan":
        x = tone(1.0)
        x[100:200] = np.nan
        data, words = wav_bytes(samples=x, subtype="FLOAT"), "NaN"
    elif case == "truncated":
        data, words = wav_bytes(2.0)[:5000], "truncated"
    else:
        data, words = b"hello, I am not audio at all\n" * 20, "unreadable"
    body = assert_error(post(url, "/v1/caption", data), 422, "bad_audio")
    assert words in body["detail"]


def test_requests_never_reach_server_paths(server):
    url, _ = server
    # a path given as a form value is not an upload: refused, nothing is opened
    r = httpx.post(url + "/v1/caption", data={"file": "/etc/passwd"})
    assert_error(r, 422, "invalid_request")
    # a file name with a path is only a label: the bytes sent are what is decoded
    r = post(url, "/v1/caption", wav_bytes(1.0), name="../../etc/passwd")
    assert r.status_code == 200 and r.json()["source"] == "passwd"


def test_cors_is_off_by_default_and_can_allow_origins(tiny_model):
    from fastapi.testclient import TestClient

    preflight = {"Origin": "http://example.org", "Access-Control-Request-Method": "POST"}
    off = TestClient(create_app(tiny_model, ServeSettings()))
    assert "access-control-allow-origin" not in off.options("/v1/caption", headers=preflight).headers
    assert "access-control-allow-origin" not in off.get("/health", headers=preflight).headers
    on = TestClient(create_app(tiny_model, ServeSettings(cors_origins=["http://example.org"])))
    r = on.options("/v1/caption", headers=preflight)
    assert r.headers["access-control-allow-origin"] == "http://example.org"


# ---------------------------------------------------------------------------- limits
def test_upload_too_large_413(tiny_model):
    with serve(tiny_model, max_upload_mb=0.05) as (url, _):  # 51 KiB
        body = assert_error(post(url, "/v1/caption", wav_bytes(3.0)), 413, "upload_too_large")
        assert "0.05 MiB" in body["detail"]
        assert post(url, "/v1/caption", wav_bytes(0.5)).status_code == 200  # 24 KiB is fine

        # a chunked body (no Content-Length) is cut off while it streams in
        sent = 0

        def chunks():
            nonlocal sent
            yield (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\n"
                   b"Content-Type: audio/wav\r\n\r\n")
            for _ in range(400):  # up to 25 MiB
                sent += 65536
                yield b"\0" * 65536
            yield b"\r\n--b--\r\n"

        try:
            r = httpx.post(url + "/v1/caption", content=chunks(), timeout=30,
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
            assert_error(r, 413, "upload_too_large")
        except (httpx.RemoteProtocolError, httpx.WriteError):
            pass  # the server answered 413 and closed the connection while we were still sending
        assert sent < 25 * 1024 * 1024  # refused long before the end of the body


def test_audio_too_long_413(tiny_model):
    with serve(tiny_model, max_duration_s=2.0) as (url, _):
        body = assert_error(post(url, "/v1/caption", wav_bytes(3.0)), 413, "audio_too_long")
        assert "3.0 s" in body["detail"] and "2 s" in body["detail"]
        ogg = io.BytesIO()
        sf.write(ogg, tone(3.0), SR, format="OGG")
        assert_error(post(url, "/v1/caption", ogg.getvalue(), name="x.ogg"), 413, "audio_too_long")
        assert post(url, "/v1/caption", wav_bytes(1.5)).status_code == 200


def test_queue_full_503_with_retry_after(tiny_model):
    with serve(tiny_model, max_queue=2, max_wait_ms=300, retry_after_s=3) as (url, _):
        audio = wav_bytes(1.0)

        async def burst():
            async with httpx.AsyncClient(timeout=60) as client:
                return await asyncio.gather(*(
                    client.post(url + "/v1/caption", files={"file": ("a.wav", audio)})
                    for _ in range(8)))

        rs = asyncio.run(burst())
        codes = sorted(r.status_code for r in rs)
        assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
        assert set(codes) <= {200, 503}
        for r in rs:
            if r.status_code == 503:
                assert r.headers["retry-after"] == "3"
                assert_error(r, 503, "queue_full")
        assert httpx.get(url + "/health").json()["active_requests"] == 0


def test_timeout_504_and_server_recovers(tiny_model):
    with serve(tiny_model, request_timeout_s=0.001) as (url, app):
        body = assert_error(post(url, "/v1/caption", wav_bytes(1.0)), 504, "timeout")
        assert "0.001 s" in body["detail"]
        assert_error(post(url, "/v1/chat", wav_bytes(1.0), message="hi"), 504, "timeout")
        h = httpx.get(url + "/health").json()
        assert h["status"] == "ok" and h["active_requests"] == 0
        app.state.service.settings.request_timeout_s = 60  # the worker was not left stuck
        assert post(url, "/v1/caption", wav_bytes(1.0)).status_code == 200


# ---------------------------------------------------------------------------- load
def test_50_concurrent_requests_all_answered_in_batches(server):
    url, app = server
    stats = app.state.service.batcher.stats
    before = {k: (v.calls, v.items) for k, v in stats.items()}
    clips = [wav_bytes(1.0 + (i % 3) * 0.5, freq=200 + 10 * i) for i in range(50)]

    async def burst():
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            return await asyncio.gather(*(
                client.post(url + ("/v1/caption" if i % 2 else "/v1/ask"),
                            files={"file": (f"c{i}.wav", clips[i])},
                            data=None if i % 2 else {"question": f"Question {i}?"})
                for i in range(50)))

    t0 = time.monotonic()
    rs = asyncio.run(burst())
    elapsed = time.monotonic() - t0
    assert [r.status_code for r in rs] == [200] * 50, [r.text for r in rs if r.status_code != 200]
    bodies = [r.json() for r in rs]
    assert all(b["text"] for b in bodies)
    assert [b["source"] for b in bodies] == [f"c{i}.wav" for i in range(50)]  # none mixed up
    assert [b["question"] for b in bodies[::2]] == [f"Question {i}?" for i in range(0, 50, 2)]
    gen_calls = stats["generate"].calls - before["generate"][0]
    gen_items = stats["generate"].items - before["generate"][1]
    enc_calls = stats["encode"].calls - before["encode"][0]
    assert gen_items == 50 and gen_calls < 50 and enc_calls < 50, (gen_calls, enc_calls)
    assert stats["generate"].largest_batch > 1
    assert elapsed < 60


def test_a_file_is_decoded_and_encoded_once_for_concurrent_and_follow_up_questions(tiny_model):
    with serve(tiny_model) as (url, app):
        service = app.state.service
        stats = service.batcher.stats
        clip = wav_bytes(1.5, freq=523.0)

        async def burst(questions):
            async with httpx.AsyncClient(timeout=120) as client:
                return await asyncio.gather(*(
                    client.post(url + "/v1/ask", files={"file": (f"q{i}.wav", clip)},
                                data={"question": q}) for i, q in enumerate(questions)))

        questions = ["What is the tempo?", "Describe the music.", "What is the tempo?"] * 4
        rs = asyncio.run(burst(questions))
        assert [r.status_code for r in rs] == [200] * 12, [r.text for r in rs]
        assert stats["encode"].items == 1  # one decode + encode for all twelve
        assert service.prepared.misses == 1 and service.prepared.shared == 11
        by_question = {}
        for q, r in zip(questions, rs):  # the same question about the same clip, the same answer
            assert by_question.setdefault(q, r.json()["text"]) == r.json()["text"]
        # a follow-up about the same bytes (another file name) is not decoded or encoded again
        r = post(url, "/v1/ask", clip, name="again.wav", question="Describe the music.")
        assert r.status_code == 200 and r.json()["source"] == "again.wav"
        assert r.json()["timings"]["encode_ms"] == 0 and r.json()["timings"]["decode_ms"] == 0
        assert r.json()["text"] == by_question["Describe the music."]
        assert stats["encode"].items == 1 and service.prepared.hits == 1
    with serve(tiny_model, feature_cache_items=0) as (url, app):  # cache off: encoded every time
        for _ in range(2):
            assert post(url, "/v1/ask", clip, question="Describe the music.").status_code == 200
        assert app.state.service.batcher.stats["encode"].items == 2


# ---------------------------------------------------------------------------- settings, CLI
def test_settings_are_validated():
    with pytest.raises(ConfigError, match="max_batch"):
        ServeSettings(max_batch=0)
    with pytest.raises(ConfigError, match="max_upload_mb"):
        ServeSettings(max_upload_mb=-1)
    assert ServeSettings(max_upload_mb=1).max_upload_bytes == 1024 * 1024


def test_serve_command_parser_and_entry(monkeypatch, tiny_model):
    import uvicorn

    from musilingo.cli import main
    from musilingo.model import MusiLingo

    seen = {}
    monkeypatch.setattr(MusiLingo, "from_pretrained", classmethod(lambda cls, *a, **k: tiny_model))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    assert main(["serve", "--model", "tiny", "--max-batch", "1", "--cors-origins", "http://a"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    assert seen["app"].state.settings.max_batch == 1
    assert seen["app"].state.settings.cors_origins == ["http://a"]


# ---------------------------------------------------------------------------- limits route, prefix
def test_limits_route_says_what_the_settings_enforce(tiny_model):
    from fastapi.testclient import TestClient

    settings = ServeSettings(model="tiny", max_upload_mb=3, max_duration_s=90,
                             max_question_chars=500, max_turns=4, max_conversations=7, conversation_ttl_min=2,
                             request_timeout_s=33, max_queue=5, retry_after_s=4)
    client = TestClient(create_app(tiny_model, settings))
    r = client.get("/v1/limits")
    assert r.status_code == 200
    assert r.json() == {
        "max_upload_mb": 3.0, "max_upload_bytes": 3 * 1024 * 1024, "max_duration_s": 90.0,
        "max_question_chars": 500, "max_turns": 4, "max_conversations": 7,
        "conversation_ttl_s": 120.0, "request_timeout_s": 33.0, "max_queue": 5, "retry_after_s": 4,
        "audio_extensions": r.json()["audio_extensions"],
        "audio_mime_types": r.json()["audio_mime_types"]}
    assert {".wav", ".flac", ".mp3"} <= set(r.json()["audio_extensions"])
    assert "audio/*" in r.json()["audio_mime_types"]
    schema = client.get("/openapi.json").json()
    ok = schema["paths"]["/v1/limits"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/LimitsResponse")
    assert "max_upload_mb" in schema["components"]["schemas"]["LimitsResponse"]["required"]
    # read from the settings on each call, not copied
    settings.max_upload_mb = 0.01
    assert client.get("/v1/limits").json()["max_upload_bytes"] == int(0.01 * 1024 * 1024)


def test_limits_answer_while_the_queue_is_full(tiny_model):
    from fastapi.testclient import TestClient

    app = create_app(tiny_model, ServeSettings(model="tiny", max_queue=1))
    client = TestClient(app)
    app.state.in_flight.active = 1  # as if one request were in progress
    try:
        assert client.get("/v1/limits").status_code == 200  # never queued
        assert_error(client.post("/v1/caption", files={"file": ("a.wav", wav_bytes(0.5))}), 503,
                     "queue_full")
    finally:
        app.state.in_flight.active = 0


def test_one_upload_gives_the_caption_and_a_conversation(server):
    url, app = server
    instruction = httpx.get(url + "/health").json()["caption_instruction"]
    assert instruction == "Please give a caption to the music."
    audio = wav_bytes(2.0, freq=300.0)
    caption = post(url, "/v1/caption", audio).json()
    first = post(url, "/v1/chat", audio, message=instruction).json()
    assert first["text"] == caption["text"] and first["turn"] == 1  # the same caption ...
    later = post(url, "/v1/chat", conversation_id=first["conversation_id"], message="Is it loud?")
    assert later.status_code == 200 and later.json()["turn"] == 2  # ... and a chat, no new upload
    conv = app.state.service.conversations.get(first["conversation_id"])
    assert [t.question for t in conv.turns] == [instruction, "Is it loud?"]



def test_first_chat_message_about_a_long_file_answers_each_window_as_caption_does(server):
    """The page captions through a chat's first message, so a long file's per-window captions
    must come from there too, equal to /v1/caption's; the chat continues from the whole track."""
    url, app = server
    instruction = httpx.get(url + "/health").json()["caption_instruction"]
    audio = wav_bytes(45.0, freq=300.0)
    caption = post(url, "/v1/caption", audio).json()
    first = post(url, "/v1/chat", audio, message=instruction).json()
    assert [(w["start_s"], w["end_s"]) for w in first["windows"]] == [(0.0, 30.0), (30.0, 45.0)]
    assert first["windows"] == caption["windows"] and first["text"] == caption["text"]
    conv = app.state.service.conversations.get(first["conversation_id"])
    assert [t.answer for t in conv.turns] == [caption["text"]]
    later = post(url, "/v1/chat", conversation_id=first["conversation_id"], message="And?").json()
    assert later["windows"] == []

ABSOLUTE_URL = re.compile(  # href="/...", fetch("/...") or a quoted "/v1", "/health", "/static"
    r"""(?:href|src|action)\s*=\s*["']/|fetch\(\s*[`"']/|["'`]/(?:v1|health|static)\b""")


def test_page_refers_to_everything_by_relative_urls():
    from musilingo.serve.app import STATIC_DIR

    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC_DIR / name).read_text()
        assert not ABSOLUTE_URL.search(text), (name, ABSOLUTE_URL.search(text))
        assert "url(/" not in text.replace(" ", "")
    html = (STATIC_DIR / "index.html").read_text()
    assert 'src="static/app.js"' in html and 'href="static/style.css"' in html
    js = (STATIC_DIR / "app.js").read_text()
    for relative in ('fetch("health")', 'fetch("v1/limits")', 'post("v1/chat"'):
        assert relative in js
    assert ABSOLUTE_URL.search('fetch("/v1/chat")') and ABSOLUTE_URL.search('<a href="/x">')


def mounted(app, prefix: str = "/musilingo"):
    """``app`` under ``prefix``, as a reverse proxy with a path prefix would serve it."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import Mount

    @asynccontextmanager
    async def lifespan(_):
        async with app.router.lifespan_context(app):
            yield

    return Starlette(routes=[Mount(prefix, app=app)], lifespan=lifespan)


def test_app_works_and_keeps_its_limits_under_a_path_prefix(tiny_model):
    from fastapi.testclient import TestClient

    app = create_app(tiny_model, ServeSettings(model="tiny", max_upload_mb=0.05, max_queue=1))
    with TestClient(mounted(app)) as client:
        page = client.get("/musilingo/")
        assert page.status_code == 200 and "<canvas" in page.text
        for asset in ("static/app.js", "static/style.css"):  # where the page's relative URLs lead
            assert client.get("/musilingo/" + asset).status_code == 200
        assert client.get("/musilingo/health").json()["model"] == "tiny"
        assert client.get("/musilingo/v1/limits").json()["max_upload_mb"] == 0.05
        r = client.post("/musilingo/v1/chat", files={"file": ("a.wav", wav_bytes(0.5))},
                        data={"message": "hi"})
        assert r.status_code == 200, r.text
        cid = r.json()["conversation_id"]
        assert client.post("/musilingo/v1/chat", data={"message": "more?", "conversation_id": cid}
                           ).json()["turn"] == 2
        assert client.delete(f"/musilingo/v1/chat/{cid}").status_code == 204
        # the middleware limits still apply under the prefix
        big = {"file": ("a.wav", wav_bytes(3.0))}
        assert_error(client.post("/musilingo/v1/caption", files=big), 413, "upload_too_large")
        app.state.in_flight.active = 1
        try:
            small = {"file": ("a.wav", wav_bytes(0.2))}
            assert_error(client.post("/musilingo/v1/caption", files=small), 503, "queue_full")
            assert client.get("/musilingo/v1/limits").status_code == 200
        finally:
            app.state.in_flight.active = 0
