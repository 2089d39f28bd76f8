"""Issue 12 in a real browser: conversations that last, citations you can open, the phone layout, the widget's
chat, copy and thumbs. Headless Chromium (see ``test_browser.py``); ``ASSISTANT_SCREENSHOTS=1`` saves the
README's screenshots.
"""

from __future__ import annotations

import json

import httpx
import pytest

from assistant.api.server import create_app
from tests.integration.servers import free_port, run_app, serve_folder, write_host_page
from tests.integration.test_browser import browser, screenshot  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.integration

STORES = "Which Xiaomi executive announced the goal of 10,000 stores?"
PRICE = "What is the SU7's price in China?"
PARIS = "Where did Xiaomi show its cars in Paris?"
UNKNOWN = "What is the boiling point of mercury?"
BOX = "Ask a question about the sources"
BOTS = "#chat [data-testid=bot]"
ADMIN_KEY, STAFF_KEY, WIDGET_KEY = "adm-browser-1", "k-browser-staff", "pub-browser-widget"
CLIPBOARD = ["clipboard-read", "clipboard-write"]


@pytest.fixture(scope="module")
def ui_site(real_assistant, tmp_path_factory):
    """The open UI (no keys), writing feedback into a folder of its own."""
    settings = real_assistant.settings.model_copy(deep=True)
    settings.paths.data_dir = tmp_path_factory.mktemp("ui-data")
    with run_app(create_app(real_assistant, settings), free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def widget_site(real_assistant, tmp_path_factory):
    """A locked server (API, admin and widget keys) and the example page carrying the widget key."""
    app_port, page_port = free_port(), free_port()
    pages = tmp_path_factory.mktemp("widget-pages")
    write_host_page(pages, app_port, WIDGET_KEY)
    settings = real_assistant.settings.model_copy(deep=True)
    settings.paths.data_dir = tmp_path_factory.mktemp("widget-data")
    security = settings.security
    security.api_keys, security.admin_keys, security.widget_key = STAFF_KEY, ADMIN_KEY, WIDGET_KEY
    security.allowed_origins = f"http://127.0.0.1:{page_port}"
    with run_app(create_app(real_assistant, settings), app_port) as url, serve_folder(pages, page_port) as host:
        yield {"app": url, "page": host + "/host.html", "origin": security.allowed_origins}


def stored_turns(page) -> int:
    """How many turns the browser has stored for the open conversation."""
    return page.evaluate(
        """() => {
            const s = JSON.parse(localStorage.getItem("assistant.conversations") || "null");
            const open = s && s.items.find((item) => item.id === s.open);
            return open ? open.turns.length : 0;
        }"""
    )


def ask(page, question: str) -> None:
    """Ask in the UI and wait until the answer is shown and the browser has filed it."""
    before = stored_turns(page)
    page.get_by_placeholder(BOX).fill(question)
    page.get_by_placeholder(BOX).press("Enter")
    page.wait_for_function(
        """(n) => {
            const s = JSON.parse(localStorage.getItem("assistant.conversations") || "null");
            const open = s && s.items.find((item) => item.id === s.open);
            return open && open.turns.length >= n;
        }""",
        arg=before + 2,
        timeout=30_000,
    )
    page.wait_for_timeout(300)


def titles(page) -> list[str]:
    return page.locator(".conv-list .conv-open").all_inner_texts()


def wait_for_answers(page, count: int, text: str) -> None:
    page.wait_for_function(
        "([sel, n, text]) => { const m = document.querySelectorAll(sel);"
        " return m.length === n && (!text || m[0].innerText.includes(text)); }",
        arg=[BOTS, count, text],
        timeout=15_000,
    )


def test_conversations_survive_reload_and_can_be_reopened_renamed_and_deleted(browser, ui_site):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(ui_site + "/")
    ask(page, STORES)
    ask(page, PRICE)
    page.locator(".conv-new").click()
    wait_for_answers(page, 0, "")
    assert page.locator("#sources .answer-sources").count() == 0
    ask(page, UNKNOWN)
    ask(page, PARIS)
    # The refusal keeps the app's italics when the chat is rebuilt for the next answer.
    assert page.locator(BOTS).first.locator("em").count() == 1
    assert titles(page) == [UNKNOWN, STORES], "newest first, named by their first question"

    page.reload()
    page.wait_for_selector(".conv-list li")
    assert titles(page) == [UNKNOWN, STORES]
    wait_for_answers(page, 2, "The sources don't say")  # the open conversation is opened again
    assert page.locator(BOTS).first.locator("em").count() == 1
    assert "Paris" in page.locator(BOTS).last.inner_text()

    page.locator(".conv-open", has_text=STORES).click()
    wait_for_answers(page, 2, "Lu Weibing")
    assert "28,000" in page.locator("#sources .answer-sources.current").inner_text()
    page.locator(".conv-list li", has_text=STORES).locator(".conv-rename").click()
    page.locator(".conv-list input").fill("Stores and prices")
    page.locator(".conv-list input").press("Enter")
    assert titles(page) == [UNKNOWN, "Stores and prices"]
    page.locator(BOTS).first.locator("a", has_text="[1]").click()
    screenshot(page, "ui-conversations.png")
    page.locator(".conv-list li", has_text=UNKNOWN).locator(".conv-delete").click()
    assert titles(page) == ["Stores and prices"]

    page.reload()
    page.wait_for_selector(".conv-list li")
    assert titles(page) == ["Stores and prices"]
    wait_for_answers(page, 2, "Lu Weibing")
    # A reopened conversation goes on: the next answer is filed under it, with the earlier turns.
    ask(page, PARIS)
    assert titles(page) == ["Stores and prices"] and stored_turns(page) == 6

    # A second tab adds its own conversation; neither tab's answers overwrite the other's.
    other = context.new_page()
    other.goto(ui_site + "/")
    wait_for_answers(other, 3, "Lu Weibing")
    other.locator(".conv-new").click()
    ask(other, PRICE)
    ask(page, STORES)
    page.wait_for_timeout(300)
    assert titles(page) == titles(other) == ["Stores and prices", PRICE]
    context.close()


def test_citations_link_to_the_cards_of_their_own_answer(browser, ui_site):  # noqa: F811
    context = browser.new_context(viewport={"width": 900, "height": 600})
    page = context.new_page()
    page.goto(ui_site + "/")
    ask(page, STORES)
    ask(page, PRICE)
    current = page.locator("#sources .answer-sources.current")
    assert current.get_attribute("data-answer") == "1" and "28,000" in current.inner_text()

    # [1] in the first answer is a link to that answer's card, not a page to open.
    page.locator(BOTS).first.locator("a", has_text="[1]").click()
    card = page.locator("#source-0-1")
    card.wait_for(state="visible")
    assert current.get_attribute("data-answer") == "0"
    assert "Lu Weibing" in card.locator("mark").first.inner_text(), "the supporting passage stays highlighted"
    assert page.url.rstrip("/") == ui_site and len(context.pages) == 1
    # Clicking an answer shows its own sources.
    page.locator(BOTS).last.click()
    assert current.get_attribute("data-answer") == "1"
    page.locator(BOTS).first.click()
    assert current.get_attribute("data-answer") == "0"

    # The card says where the passage is and links to the document.
    cited = httpx.post(ui_site + "/api/ask", json={"question": STORES}, timeout=30).json()["citations"][0]
    where = card.locator(".where").inner_text()
    assert (cited["location"] in where) if cited["location"] else ("characters" in where), where
    href = card.locator("a.open-doc").get_attribute("href")
    document, _, passage = href.partition("#:~:text=")
    assert document == "/api/sources/xiaomi-overseas-ev-expansion.md" and passage.startswith("Reflecting%20this")
    assert "Lu Weibing" in httpx.get(ui_site + document, timeout=30).text
    # The document opens in a new tab, scrolled to the passage (the browser finds the text fragment).
    with context.expect_page() as opened:
        card.locator("a.open-doc").click()
    document_page = opened.value
    document_page.wait_for_load_state()
    document_page.wait_for_function("window.scrollY > 0", timeout=10_000)
    assert "Lu Weibing" in document_page.inner_text("body")
    context.close()


def test_copying_a_refusal_gives_its_plain_text(browser, ui_site):  # noqa: F811
    context = browser.new_context(permissions=CLIPBOARD)
    page = context.new_page()
    page.goto(ui_site + "/")
    ask(page, UNKNOWN)
    page.locator(BOTS).first.hover()
    page.locator("button[aria-label='Copy message']").last.click()
    page.wait_for_timeout(400)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("The sources don't say") and "*" not in copied and "\\" not in copied
    context.close()


def test_on_a_phone_the_latest_answers_card_is_above_the_fold(browser, ui_site):  # noqa: F811
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(ui_site + "/")
    ask(page, PRICE)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    card = page.locator("#sources .answer-sources.current .source-card").first.bounding_box()
    assert card["y"] + 80 < 844, f"the card starts at {card['y']:.0f} px, below the fold"
    for below in ("#ask-row", "#examples", "#conversations"):
        assert page.locator(below).bounding_box()["y"] > card["y"], f"{below} comes before the card"
    screenshot(page, "ui-mobile.png")
    page.close()


def test_widget_keeps_its_chat_copies_and_sends_thumbs(browser, widget_site):  # noqa: F811
    context = browser.new_context(viewport={"width": 1100, "height": 760}, permissions=CLIPBOARD)
    page = context.new_page()
    page.goto(widget_site["page"])
    page.click("#assistant-widget >> button.launch")
    page.fill("#assistant-widget >> input", STORES)
    page.press("#assistant-widget >> input", "Enter")
    page.wait_for_selector("#assistant-widget >> .msg.bot .acts", timeout=30_000)
    answer = page.locator("#assistant-widget >> .msg.bot").last

    answer.locator("button.rate-down").click()
    page.wait_for_selector("#assistant-widget >> text=Thanks for the feedback")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    stored = httpx.get(widget_site["app"] + "/api/feedback", headers=admin, timeout=30).json()["feedback"]
    assert [(e["rating"], e["question"]) for e in stored] == [("down", STORES)]
    assert "Lu Weibing" in stored[0]["answer"] and stored[0]["citations"][0]["source"].endswith(".md")

    answer.locator("button", has_text="Copy").click()
    page.wait_for_timeout(300)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "Lu Weibing" in copied and copied.endswith("[1]"), copied
    screenshot(page, "widget-chat.png")

    page.reload()
    page.click("#assistant-widget >> button.launch")
    log = page.locator("#assistant-widget >> .log")
    assert STORES in log.inner_text() and "Lu Weibing" in log.inner_text(), "the chat survives a reload"
    assert page.locator("#assistant-widget >> button.rate-down").get_attribute("aria-pressed") == "true"

    page.click("#assistant-widget >> button.new")
    assert page.locator("#assistant-widget >> .msg").count() == 1, "a new chat shows only the greeting"
    page.reload()
    page.click("#assistant-widget >> button.launch")
    assert page.locator("#assistant-widget >> .msg").count() == 1
    context.close()

    # The widget's public key may send feedback, and still neither read it nor call other routes.
    widget = {"Authorization": f"Bearer {WIDGET_KEY}", "Origin": widget_site["origin"]}
    body = {"rating": "up", "question": "q", "answer": "a"}
    with httpx.Client(base_url=widget_site["app"], timeout=30) as http:
        assert http.post("/api/widget/feedback", json=body, headers=widget).json() == {"stored": True}
        assert http.get("/api/feedback", headers=widget).status_code == 401
        assert http.post("/api/feedback", json=body, headers=widget).status_code == 401
        assert http.post("/api/widget/feedback", json=body).status_code == 401
        assert http.post("/api/widget/feedback", content=json.dumps({**body, "rating": "meh"}),
                         headers={**widget, "Content-Type": "application/json"}).status_code == 422  # fmt: skip
