"""The widget and the UI in a real headless Chromium (Debian's package, driven by Playwright).

With ``ASSISTANT_SCREENSHOTS=1`` the tests also write the README's screenshots into ``docs/``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from assistant.api.server import create_app
from tests.conftest import ROOT
from tests.integration.servers import free_port, run_app, serve_folder, write_host_page

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = ROOT / "docs"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip


def screenshot(page, name: str) -> None:
    """Save ``docs/<name>`` when ``ASSISTANT_SCREENSHOTS`` is set (so a test run leaves the tree as it was)."""
    if os.environ.get("ASSISTANT_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / name))


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("chromium is not installed (scripts/setup.sh --test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def sites(real_assistant, tmp_path_factory):
    """The assistant server, the example host page on an allowed origin, and on a disallowed one."""
    app_port, allowed_port, denied_port = free_port(), free_port(), free_port()
    pages = tmp_path_factory.mktemp("pages")
    write_host_page(pages, app_port)
    settings = real_assistant.settings.model_copy(deep=True)
    settings.security.allowed_origins = f"http://127.0.0.1:{allowed_port}"
    app = create_app(real_assistant, settings)
    with (
        run_app(app, app_port) as app_url,
        serve_folder(pages, allowed_port) as ok,
        serve_folder(pages, denied_port) as bad,
    ):
        yield {"app": app_url, "allowed": ok + "/host.html", "denied": bad + "/host.html"}


def _ask_widget(page, question: str) -> str:
    page.click("#assistant-widget >> button.launch")
    page.fill("#assistant-widget >> input", question)
    page.press("#assistant-widget >> input", "Enter")
    page.wait_for_selector("#assistant-widget >> .msg.bot details", timeout=30_000)
    return page.inner_text("#assistant-widget >> .log")


def test_widget_on_an_allowed_origin_answers_with_citations(browser, sites):
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    external = []
    page.on("request", lambda r: external.append(r.url) if "127.0.0.1" not in r.url else None)
    page.goto(sites["allowed"])
    text = _ask_widget(page, "Which Xiaomi executive announced the goal of 10,000 stores?")
    assert "Lu Weibing" in text and "[1]" in text
    assert page.locator("#assistant-widget >> mark").count() >= 1
    screenshot(page, "widget.png")
    assert external == [], f"the widget made third-party requests: {external}"
    page.close()


def test_widget_on_a_disallowed_origin_does_not_work(browser, sites):
    page = browser.new_page()
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    page.goto(sites["denied"])
    page.wait_for_timeout(1500)
    assert page.locator("#assistant-widget").count() == 0
    assert any("not allowed" in m for m in messages)
    page.close()


def test_widget_fits_a_phone_screen(browser, sites):
    page = browser.new_page(viewport={"width": 390, "height": 740})
    page.goto(sites["allowed"])
    _ask_widget(page, "How many SU7 vehicles did Xiaomi ship to France?")
    box = page.locator("#assistant-widget >> .panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.close()


def test_chat_ui_shows_the_answer_and_source_cards(browser, sites):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(sites["app"] + "/")
    page.get_by_placeholder("Ask a question about the sources").fill("What is the SU7's price in China?")
    page.get_by_placeholder("Ask a question about the sources").press("Enter")
    page.wait_for_selector(".source-card mark", timeout=30_000)
    assert "28,000" in page.inner_text(".source-card")
    page.wait_for_timeout(500)
    screenshot(page, "ui.png")
    page.close()


HOSTILE = """# Cafeteria notice

The cafeteria menu changes every Monday morning. <script>window.__pwned = 1</script>
Lunch is served from noon <img src=x onerror="window.__pwned = 2"> until two in the afternoon.
"""


@pytest.fixture(scope="module")
def hostile_site(real_assistant, tmp_path_factory):
    """An assistant whose only source carries script and onerror payloads."""
    from assistant.facade import Assistant
    from assistant.store import PassageStore, make_client

    root = tmp_path_factory.mktemp("hostile")
    (root / "sources").mkdir()
    (root / "sources" / "cafeteria.md").write_text(HOSTILE)
    settings = real_assistant.settings.model_copy(deep=True)
    settings.paths.sources_dir, settings.paths.index_dir = root / "sources", root / "index"
    assistant = Assistant(
        settings, real_assistant.embedder, PassageStore(make_client(settings), settings.collection_name)
    )
    assistant.ingest()
    app_port, page_port = free_port(), free_port()
    pages = root / "pages"
    pages.mkdir()
    write_host_page(pages, app_port)
    settings.security.allowed_origins = f"http://127.0.0.1:{page_port}"
    with run_app(create_app(assistant, settings), app_port) as app_url, serve_folder(pages, page_port) as page_url:
        yield {"app": app_url, "page": page_url + "/host.html"}


def test_source_markup_renders_inert_in_widget_and_ui(browser, hostile_site):
    question = "When does the cafeteria menu change?"
    page = browser.new_page()
    page.goto(hostile_site["page"])
    text = _ask_widget(page, question)
    assert "Monday" in text
    cards = page.inner_text("#assistant-widget >> .cites")
    assert "<script>" in cards or "<img" in cards, "payload shown as text"
    assert page.evaluate("window.__pwned") is None
    page.close()

    page = browser.new_page()
    page.goto(hostile_site["app"] + "/")
    box = page.get_by_placeholder("Ask a question about the sources")
    box.fill(question)
    box.press("Enter")
    page.wait_for_selector(".source-card mark", timeout=30_000)
    page.wait_for_timeout(500)
    assert "<script>" in page.inner_text(".source-card")
    assert page.evaluate("window.__pwned") is None
    page.close()
