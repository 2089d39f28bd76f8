"""Issue 10, row 6: Markdown and HTML in a source's text and title render as text in the chat UI.

A real headless Chromium opens the UI of an assistant whose only source is full of links, images, raw HTML,
autolinks and template syntax that all point at a local listener; the listener records any request, so a
single rendered image or prefetch fails the test. The app's own formatting (italic refusals) must still work.
"""

from __future__ import annotations

import pytest

from assistant.api.server import create_app
from tests.integration.servers import free_port, record_requests, run_app
from tests.integration.test_browser import CHROMIUM, FLAGS

pytestmark = pytest.mark.integration


def hostile_source(listener: str) -> str:
    return f"""---
title: "Canteen ![title]({listener}/title.png) [prize]({listener}/title-link) <img src='{listener}/title-html.png'>"
examples:
  - "When does the canteen open? ![example]({listener}/example.png)"
---
# Canteen notice

The canteen opens at seven ![pixel]({listener}/answer.png) every weekday morning.
Breakfast is served until nine; see [the menu]({listener}/answer-link) or {listener}/autolink for details.
Lunch prices start at four euros <img src="{listener}/html.png"> and ${{7*7}} {{{{constructor}}}} $$x^2$$.
"""


@pytest.fixture(scope="module")
def hostile_ui(real_assistant, tmp_path_factory):
    """The UI over one hostile source, and the list of requests that reached the listener it points at."""
    from assistant.facade import Assistant
    from assistant.store import PassageStore, make_client

    if not CHROMIUM:
        pytest.skip("chromium is not installed (scripts/setup.sh --test installs it)")
    listener_port = free_port()
    listener = f"http://127.0.0.1:{listener_port}"
    root = tmp_path_factory.mktemp("hostile-markdown")
    (root / "sources").mkdir()
    (root / "sources" / "canteen.md").write_text(hostile_source(listener))
    settings = real_assistant.settings.model_copy(deep=True)
    settings.paths.sources_dir, settings.paths.index_dir = root / "sources", root / "index"
    settings.paths.data_dir = root / "data"
    assistant = Assistant(
        settings, real_assistant.embedder, PassageStore(make_client(settings), settings.collection_name)
    )
    assistant.ingest()
    with record_requests(listener_port) as seen, run_app(create_app(assistant, settings), free_port()) as url:
        yield {"url": url, "listener": listener, "seen": seen}


def test_source_markup_is_shown_as_text_in_the_chat_ui(hostile_ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(hostile_ui["url"] + "/")
        box = page.get_by_placeholder("Ask a question about the sources")
        sources = []
        for question in ("When does the canteen open?", "What do lunch prices start at?"):
            box.fill(question)
            box.press("Enter")
            page.wait_for_selector(".source-card mark", timeout=30_000)
            page.wait_for_timeout(800)
            sources += page.locator(".source-card").all_inner_texts()
        box.fill("What is the top speed of the SU7?")
        box.press("Enter")
        page.wait_for_selector(".refused", timeout=30_000)
        page.wait_for_timeout(800)
        page.get_by_text("Indexed sources").click()
        page.wait_for_timeout(800)

        bot = page.locator('[data-testid="bot"]')
        answers = bot.all_inner_texts()
        links = page.eval_on_selector_all("a[href], img[src]", "els => els.map(e => e.href || e.src)")
        listed = page.get_by_text("Canteen ![title]").all_inner_texts()
        italic = bot.last.locator("em").count()
        browser.close()

    assert hostile_ui["seen"] == [], f"the page fetched {hostile_ui['seen']}"
    assert [link for link in links if hostile_ui["listener"] in link] == []
    shown = " ".join(answers)
    assert f"![pixel]({hostile_ui['listener']}/answer.png)" in shown, answers
    assert f'<img src="{hostile_ui["listener"]}/html.png">' in shown and "[1]" in shown
    assert any("![pixel]" in card for card in sources)
    assert listed and f"[prize]({hostile_ui['listener']}/title-link)" in listed[0]
    assert italic == 1, "a refusal is still shown in the app's italics"
