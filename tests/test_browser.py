"""The page in a real headless Chromium (Playwright, the system Chromium, no downloads).

The app is mounted under a path prefix (``/musilingo/``, as behind a reverse proxy), so every
request the page makes must stay under it. Uploads a generated wav, waits for the caption, checks
the waveform was drawn, asks two questions in the chat and checks the replies, the server-side
history and that the file was uploaded exactly once; a bad file shows its error in plain words;
with small limits the page shows them and refuses too large and too long files before sending
anything. Skipped with the reason when Playwright or Chromium is missing. Set
``MUSILINGO_SCREENSHOT=/path.png`` to keep a screenshot of the page after the caption.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager

import pytest
import soundfile as sf

from conftest import SR, tone
from musilingo.serve import ServeSettings, create_app
from test_serve import mounted, running_server

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("MUSILINGO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright)")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (set MUSILINGO_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


PREFIX = "/musilingo"


class UploadCounter:
    """ASGI wrapper: records the path of every request whose body carries a file part.

    Counted on the server because Chromium does not show Playwright the body of a form with a file.
    """

    def __init__(self, app):
        self.app = app
        self.uploads: list[str] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        counted = False

        async def counting_receive():
            nonlocal counted
            message = await receive()
            if message["type"] == "http.request" and not counted:
                body.extend(message.get("body", b""))
                if b'; filename="' in body:
                    counted = True
                    self.uploads.append(scope["path"])
            return message

        await self.app(scope, counting_receive, send)


@contextmanager
def prefixed_site(model, **settings):
    """The app under ``PREFIX`` on a real server: the page's URL, the app, the upload counter."""
    app = create_app(model, ServeSettings(model="tiny", **settings))
    counter = UploadCounter(mounted(app, PREFIX))
    with running_server(counter) as url:
        yield f"{url}{PREFIX}/", app, counter


@pytest.fixture(scope="module")
def site(tiny_model):
    with prefixed_site(tiny_model) as s:
        yield s


def page_urls(page) -> list[str]:
    """A list that fills with the URLs the page requests from the network (not blob: / data:)."""
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url) if r.url.startswith("http") else None)
    return urls


def test_page_captions_and_chats_with_one_upload(browser, site, tmp_path):
    url, app, counter = site
    uploads_before = len(counter.uploads)
    clip = tmp_path / "song.wav"
    sf.write(str(clip), tone(3.0, SR, 330.0), SR)
    page = browser.new_page(viewport={"width": 1000, "height": 1100})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    urls = page_urls(page)
    page.goto(url)
    page.wait_for_function("document.querySelector('#model-info').textContent.includes('tiny')")
    assert page.is_visible("#untrained")  # the tiny model is untrained: the page says so
    page.wait_for_function("document.querySelector('#limits').textContent.includes('50')")
    assert "up to 50.0 MiB and 10 min of audio" in page.text_content("#limits")

    page.set_input_files("#file-input", str(clip))
    page.wait_for_selector("#status", state="visible", timeout=5000)  # progress is shown
    page.wait_for_function(
        "(() => { const c = document.querySelector('#caption');"
        " return !c.classList.contains('muted') && c.textContent.length > 0; })()", timeout=30000)
    assert page.is_hidden("#error")
    assert "song.wav" in page.text_content("#file-name")
    assert "total" in page.text_content("#caption-timings")
    page.wait_for_function("window.getComputedStyle(document.querySelector('#status')).display === 'none'")
    drawn = page.evaluate("""() => {
        const c = document.querySelector('#waveform');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
        return painted / (c.width * c.height);
    }""")
    assert drawn > 0.02, "the waveform was not drawn"
    page.screenshot(path=os.environ.get("MUSILINGO_SCREENSHOT", str(tmp_path / "page.png")),
                    full_page=True)

    for k, question in enumerate(["What instruments are playing?", "Is it fast?"], start=1):
        page.fill("#question", question)
        page.click("#ask")
        page.wait_for_function(f"document.querySelectorAll('#chat-log li.model').length === {k}",
                               timeout=30000)
        assert page.text_content("#chat-log li.you >> nth=-1") == question
        assert page.text_content("#chat-log li.model >> nth=-1")
    convs = app.state.service.conversations
    assert len(convs) == 1
    conv = next(iter(convs._items.values()))
    caption = page.text_content("#caption")
    assert [(t.question, t.answer) for t in conv.turns][0] == (
        "Please give a caption to the music.", caption)  # the caption began the conversation
    assert [t.question for t in conv.turns][1:] == ["What instruments are playing?", "Is it fast?"]
    uploads = counter.uploads[uploads_before:]
    assert uploads == [f"{PREFIX}/v1/chat"], uploads  # one upload for the caption and the chat
    assert urls and all(u.startswith(url) for u in urls), urls  # every request under the prefix

    # choosing another file uploads it once more and forgets the first conversation
    other = tmp_path / "other.wav"
    sf.write(str(other), tone(2.0, SR, 520.0), SR)
    page.set_input_files("#file-input", str(other))
    page.wait_for_function(
        "(() => { const c = document.querySelector('#caption');"
        " return document.querySelector('#file-name').textContent.includes('other.wav')"
        " && !c.classList.contains('muted') && c.textContent.length > 0; })()", timeout=30000)
    page.wait_for_function("window.getComputedStyle(document.querySelector('#status')).display === 'none'")
    assert len(counter.uploads) - uploads_before == 2
    assert page.text_content("#chat-log") == ""
    first_id = conv.id
    deadline = time.monotonic() + 10
    while convs.get(first_id) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert convs.get(first_id) is None and len(convs) == 1  # the page deleted the first one
    assert not problems, problems
    page.close()


def test_page_explains_a_bad_file(browser, site, tmp_path):
    url, _, counter = site
    uploads_before = len(counter.uploads)
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"these are not sounds\n" * 50)
    page = browser.new_page()
    page.goto(url)
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("#error", state="visible", timeout=30000)
    text = page.text_content("#error")
    assert "could not be read as audio" in text and "/tmp/" not in text
    assert page.text_content("#caption") == "No caption."
    assert page.is_disabled("#question") and page.is_disabled("#ask")  # nothing to ask about
    assert len(counter.uploads) - uploads_before == 1
    page.close()


def test_page_shows_the_limits_and_refuses_files_beyond_them(browser, tiny_model, tmp_path):
    with prefixed_site(tiny_model, max_upload_mb=0.2, max_duration_s=2,
                       max_question_chars=300) as (url, _, counter):
        clips = {}
        for name, seconds in (("big.wav", 5.0), ("long.wav", 3.0), ("ok.wav", 1.5)):
            clips[name] = tmp_path / name
            sf.write(str(clips[name]), tone(seconds, SR), SR)  # 48 kB per second
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.querySelector('#limits').textContent.includes('MiB')")
        limits = page.text_content("#limits")
        assert "up to 0.20 MiB and 2 s of audio" in limits and "300 characters" in limits
        assert ".wav" in page.get_attribute("#file-input", "accept")

        page.set_input_files("#file-input", str(clips["big.wav"]))  # 240 kB = 0.23 MiB > 0.2 MiB
        page.wait_for_selector("#error", state="visible", timeout=10000)
        error = page.text_content("#error")
        assert "That file is 0.23 MiB" in error and "up to 0.20 MiB" in error
        assert page.text_content("#caption") == "Not sent to the server."
        assert page.is_disabled("#ask")

        page.set_input_files("#file-input", str(clips["long.wav"]))  # 141 kB but 3 s > 2 s
        page.wait_for_function("document.querySelector('#error').textContent.includes('3 s long')",
                               timeout=10000)
        assert "at most 2 s" in page.text_content("#error")
        assert counter.uploads == []  # both refused before sending anything

        page.set_input_files("#file-input", str(clips["ok.wav"]))
        page.wait_for_function(
            "(() => { const c = document.querySelector('#caption');"
            " return !c.classList.contains('muted') && c.textContent.length > 0; })()", timeout=30000)
        assert page.is_hidden("#error")
        assert counter.uploads == [f"{PREFIX}/v1/chat"]
        assert page.get_attribute("#question", "maxlength") == "300"
        page.close()
