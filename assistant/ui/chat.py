"""The gradio chat UI: streamed answers, per-answer source cards, conversations kept in the browser, feedback.

The page is laid out here; source cards are built in :mod:`assistant.ui.cards`, chat Markdown in
:mod:`assistant.ui.markdown`, the browser's conversations in :mod:`assistant.ui.conversations`, and the
Documents tab in :mod:`assistant.ui.documents`.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable
from importlib import resources

import gradio as gr

from assistant.errors import AssistantError
from assistant.facade import Assistant
from assistant.feedback import LIMITS, FeedbackLog
from assistant.ui.cards import EMPTY, document_url, render_sources
from assistant.ui.conversations import (
    aligned,
    conversations_panel,
    for_browser,
    from_browser,
    new_conversation,
    shown,
    title_of,
)
from assistant.ui.documents import documents_panel
from assistant.ui.markdown import clean, text_parts, text_turns

CSS = """
.source-card{border:1px solid var(--border-color-primary);border-radius:8px;padding:10px 12px;margin:8px 0}
.source-card summary{cursor:pointer;font-weight:600}
.source-card .where{color:var(--body-text-color-subdued);font-size:.85em}
.source-card p{white-space:pre-wrap;margin:.5em 0 0}
.source-card mark{background:#fde68a;color:#111;padding:0 1px}
.source-card .open-doc{display:inline-block;margin-top:6px;font-size:.9em}
.source-card.flash{animation:flash 1.2s ease-out}
@keyframes flash{from{box-shadow:0 0 0 3px #f59e0b}to{box-shadow:0 0 0 0 transparent}}
.answer-sources{display:none}.answer-sources.current{display:block}
.answer-sources .for{color:var(--body-text-color-subdued);font-size:.85em;margin:0 0 4px}
#chat .selected-answer{outline:2px solid var(--color-accent-soft);outline-offset:2px}
#chat [data-testid=bot]{cursor:pointer}
.refused{border-left:4px solid #9ca3af;padding-left:10px;color:var(--body-text-color-subdued)}
.hint{color:var(--body-text-color-subdued);margin:0}
#chat-script,#hint:not(:has(p)){display:none}
/* A phone: one column in reading order (answer, its sources, then the input), the chat and the cards short
   enough that the latest answer's first card shows without scrolling. */
@media (max-width:640px){
  .gradio-container{padding:4px !important}
  #main-row{flex-direction:column !important;flex-wrap:nowrap !important;gap:8px}
  #main-row>.column{display:contents !important}
  #chat{order:1;height:44vh !important;max-height:44vh}
  #sources{order:2;max-height:34vh;overflow-y:auto !important}
  #hint{order:0}#comment-row{order:3}#ask-row{order:4}#examples{order:5}#conversations{order:6}#indexed{order:7}
}
"""


def example_questions(assistant: Assistant, limit: int = 4) -> list[str]:
    """Suggested questions that source owners put in their front matter (``examples:``)."""
    found: list[str] = []
    for pid in assistant.corpus.ids:
        extra = assistant.corpus.passage(pid).metadata.get("examples")
        if isinstance(extra, list):
            found.extend(q for q in extra if isinstance(q, str) and q not in found)
        if len(found) >= limit:
            break
    return found[:limit]


def landing_hint(assistant: Assistant, limit: int = 6) -> str:
    """What to ask about, from the indexed titles, when no front matter suggests example questions.

    Titles are source content, so they are escaped.
    """
    if example_questions(assistant):
        return ""
    titles = list(dict.fromkeys(s["title"] for s in assistant.sources()))
    if not titles:
        return "<p class='hint'>No documents are indexed yet.</p>"
    named = ", ".join(f"<strong>{html.escape(t)}</strong>" for t in titles[:limit])
    more = f" and {len(titles) - limit} more" if len(titles) > limit else ""
    return f"<p class='hint'>Ask about {named}{more}.</p>"


def sources_list(sources: list[dict]) -> str:
    """The indexed sources as HTML, every title and id escaped (a title is source content too)."""
    if not sources:
        return "<p><em>No sources indexed.</em></p>"
    items = "".join(
        f"<li><strong>{html.escape(s['title'])}</strong> — <code>{html.escape(s['source'])}</code>"
        f" ({int(s['chunks'])} passages)</li>"
        for s in sources
    )
    return f"<ul>{items}</ul>"


def build_ui(
    assistant: Assistant,
    feedback: FeedbackLog,
    *,
    documents: bool = False,
    document_link: Callable[[str], str] = document_url,
) -> gr.Blocks:
    """The chat page over the facade.

    Args:
        assistant: The facade every handler calls.
        feedback: Where ratings and their comments go.
        documents: Add the Documents tab (only when admin keys are configured).
        document_link: The URL of a source id's document for the cards' "Open document" (the server signs it
            when keys are on, since a browser following a link sends no key).

    """
    with gr.Blocks(title="Assistant") as ui:
        # The answers given in this session, server-side: only these can be rated.
        answered = gr.State([])
        # The last rating stored in this session: a comment can be added to it, and to nothing else.
        rated = gr.State(None)
        # The open conversation with each answer's citations (None until its first question).
        conversation = gr.State(None)
        gr.Markdown("## Ask the sources\nShort answers with numbered citations to the exact passages.")
        # Nothing to show: it only runs the script for copy buttons, [n] links and per-answer sources.
        script = resources.files("assistant").joinpath("static/chat.js").read_text(encoding="utf-8")
        gr.HTML("", js_on_load=script, padding=False, container=False, elem_id="chat-script")
        with gr.Tabs() if documents else contextlib.nullcontext():
            chat_tab = gr.Tab("Chat") if documents else contextlib.nullcontext()
            with chat_tab, gr.Row(equal_height=False, elem_id="main-row"):
                with gr.Column(scale=1, min_width=200):
                    panel = conversations_panel()
                with gr.Column(scale=3, min_width=300):
                    hint = gr.HTML(landing_hint(assistant), elem_id="hint")
                    chatbot = gr.Chatbot(
                        label="Chat", height=460, feedback_options=("Like", "Dislike"),
                        latex_delimiters=[], allow_tags=False, elem_id="chat",
                    )  # fmt: skip
                    with gr.Row(visible=False, elem_id="comment-row") as comment_row:
                        comment = gr.Textbox(
                            placeholder="Add a comment to your rating (optional)", show_label=False, scale=5,
                            max_length=LIMITS["comment"],
                        )  # fmt: skip
                        send_comment = gr.Button("Send comment", scale=1, min_width=80)
                    with gr.Row(elem_id="ask-row"):
                        box = gr.Textbox(
                            placeholder="Ask a question about the sources…", show_label=False, scale=5,
                            autofocus=True,
                        )  # fmt: skip
                        send = gr.Button("Ask", variant="primary", scale=1, min_width=80)
                    examples = example_questions(assistant)
                    if examples:
                        gr.Examples(examples=[[q] for q in examples], inputs=[box], label="Try", elem_id="examples")
                with gr.Column(scale=2, min_width=280):
                    cards = gr.HTML(EMPTY, label="Sources cited", elem_id="sources")
                    with gr.Accordion("Indexed sources", open=False, elem_id="indexed") as indexed:
                        listed = gr.HTML(sources_list(assistant.sources()))
            if documents:
                with gr.Tab("Documents"):
                    docs = documents_panel()

        def respond(message: str, chat: list, given: list[dict] | None, conv: dict | None):
            question = clean(message) if isinstance(message, str) else ""
            if not question.strip():  # nothing asked: no bubble, no warning, the box stays as it is
                yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                return
            conv = conv or new_conversation()
            turns = aligned(text_parts(chat), conv["turns"])
            history = [{"role": t["role"], "content": t["text"]} for t in turns]
            turns.append({"role": "user", "text": question})
            conv = {**conv, "title": conv["title"] or title_of(turns[0]["text"]), "turns": turns}
            given = list(given or [])
            try:
                answer = assistant.ask(question, history)
            except AssistantError as exc:
                turns.append({"role": "assistant", "text": "⚠️ " + exc.message, "refused": False, "citations": []})
                yield shown(turns), "", render_sources(turns, document_link), given, conv
                return
            given = [*given, {"question": question, **answer.to_dict()}][-50:]
            final = {"role": "assistant", "text": answer.answer, "refused": answer.refused,
                     "citations": [c.to_dict() for c in answer.citations]}  # fmt: skip
            text = ""
            for piece in answer.answer.split("] "):
                text += piece if piece.endswith("]") or piece == answer.answer else piece + "] "
                partial = [*turns, {**final, "text": text}]
                yield shown(partial), "", render_sources(partial, document_link), given, conv
            turns.append(final)
            yield shown(turns), "", render_sources(turns, document_link), given, conv

        def rate(data: gr.LikeData, given: list[dict] | None):
            # The rated text comes from the client; only an answer this session was given is stored,
            # with the question, text and citations the server kept for it.
            turn = text_turns([{"role": "assistant", "content": data.value}])
            entry = next((g for g in reversed(given or []) if turn and g["answer"] == turn[0]["content"]), None)
            rating = {True: "up", "Like": "up", False: "down", "Dislike": "down"}.get(data.liked)
            if rating is None:
                return None, gr.update(visible=False)
            if entry is None:
                gr.Info("Only answers given since this page was opened can be rated.")
                return None, gr.update(visible=False)
            stored = feedback.record(
                rating=rating,
                question=entry["question"],
                answer=entry["answer"],
                citations=entry.get("citations", []),
            )
            gr.Info("Thanks, your feedback was saved. You can add a comment below.")
            return stored, gr.update(visible=True)

        def add_comment(text: str, last: dict | None):
            # A comment goes with the rating this session stored last; it is a new line with that rating's id.
            if not isinstance(last, dict) or not isinstance(text, str) or not text.strip():
                return gr.skip(), gr.skip(), gr.skip()
            stored = feedback.record(
                rating=last["rating"], question=last["question"], answer=last["answer"],
                citations=last.get("citations", []), comment=clean(text).strip(), entry_id=last["id"],
            )  # fmt: skip
            gr.Info("Thanks, your comment was saved.")
            return stored, "", gr.update(visible=False)

        def reopen(event: gr.EventData):
            # A conversation this browser kept: client data, checked and bounded before it is shown.
            data = getattr(event, "_data", None)
            conv = from_browser(data.get("conversation") if isinstance(data, dict) else None)
            if conv is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            cards_html = render_sources(conv["turns"], document_link)
            return shown(conv["turns"]), cards_html, conv, None, gr.update(visible=False)

        def start_new():
            return [], EMPTY, None, None, gr.update(visible=False)

        def cleared():
            # The chatbot's own clear button: a new conversation, and none is open in the browser's list.
            return *start_new(), None

        def refresh() -> tuple[str, str]:
            return landing_hint(assistant), sources_list(assistant.sources())

        asked = [box, chatbot, answered, conversation]
        answers = [chatbot, box, cards, answered, conversation]
        # The browser files the open conversation after every answer (its record is the panel's value).
        box.submit(respond, asked, answers, api_name="chat").then(
            for_browser, conversation, panel, api_visibility="private"
        )
        send.click(respond, asked, answers, api_visibility="private").then(
            for_browser, conversation, panel, api_visibility="private"
        )
        chatbot.like(rate, [answered], [rated, comment_row], api_visibility="private")
        comment.submit(add_comment, [comment, rated], [rated, comment, comment_row], api_visibility="private")
        send_comment.click(add_comment, [comment, rated], [rated, comment, comment_row], api_visibility="private")
        opened = [chatbot, cards, conversation, rated, comment_row]
        panel.open(reopen, None, opened, api_visibility="private")
        panel.new(start_new, None, opened, api_visibility="private")
        chatbot.clear(cleared, None, [*opened, panel], api_visibility="private")
        # The sources folder is followed while serving: the list and the hint are read again when the page
        # loads, when the list is opened, and after the Documents tab changed something.
        ui.load(refresh, None, [hint, listed], api_visibility="private")
        indexed.expand(refresh, None, [hint, listed], api_visibility="private")
        if documents:
            docs.change(refresh, None, [hint, listed], api_visibility="private")
    ui.css = CSS
    return ui
