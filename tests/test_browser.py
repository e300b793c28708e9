"""The page at ``/`` in a real headless Chromium (Playwright, the system Chromium, no downloads).

Uploads a generated wav, waits for the caption, checks the waveform was drawn, asks two questions
in the chat and checks the replies and the server-side history; then a bad file shows its error in
plain words. Skipped with the reason when Playwright or Chromium is missing. Set
``MUSILINGO_SCREENSHOT=/path.png`` to keep a screenshot of the page after the caption.
"""

from __future__ import annotations

import os
import shutil

import pytest
import soundfile as sf

from conftest import SR, tone
from musilingo.serve import ServeSettings, create_app
from test_serve import running_server

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


@pytest.fixture(scope="module")
def site(tiny_model):
    app = create_app(tiny_model, ServeSettings(model="tiny"))
    with running_server(app) as url:
        yield url, app


def test_page_captions_and_chats(browser, site, tmp_path):
    url, app = site
    clip = tmp_path / "song.wav"
    sf.write(str(clip), tone(3.0, SR, 330.0), SR)
    page = browser.new_page(viewport={"width": 1000, "height": 1100})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url + "/")
    page.wait_for_function("document.querySelector('#model-info').textContent.includes('tiny')")
    assert page.is_visible("#untrained")  # the tiny model is untrained: the page says so

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
    assert [t.question for t in conv.turns] == ["What instruments are playing?", "Is it fast?"]
    assert not problems, problems
    page.close()


def test_page_explains_a_bad_file(browser, site, tmp_path):
    url, _ = site
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"these are not sounds\n" * 50)
    page = browser.new_page()
    page.goto(url + "/")
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("#error", state="visible", timeout=30000)
    text = page.text_content("#error")
    assert "could not be read as audio" in text and "/tmp/" not in text
    assert page.text_content("#caption") == "No caption."
    page.close()
