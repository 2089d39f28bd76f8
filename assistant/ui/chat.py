"""The gradio chat UI: streamed answers, numbered source cards with highlights, feedback, and the Documents tab."""

from __future__ import annotations

import contextlib
import html
import re
from importlib import resources

import gradio as gr

from assistant.answer.types import Answer
from assistant.errors import AssistantError
from assistant.facade import Assistant
from assistant.feedback import LIMITS, FeedbackLog
from assistant.ui.documents import documents_panel

CSS = """
.source-card{border:1px solid var(--border-color-primary);border-radius:8px;padding:10px 12px;margin:8px 0}
.source-card summary{cursor:pointer;font-weight:600}
.source-card .where{color:var(--body-text-color-subdued);font-size:.85em}
.source-card p{white-space:pre-wrap;margin:.5em 0 0}
.source-card mark{background:#fde68a;color:#111;padding:0 1px}
.refused{border-left:4px solid #9ca3af;padding-left:10px;color:var(--body-text-color-subdued)}
.hint{color:var(--body-text-color-subdued);margin:0}
@media (max-width:640px){.gradio-container{padding:4px !important}}
"""


def render_citations(answer: Answer | None) -> str:
    """Source cards: title, location, and the passage with the supporting sentences highlighted.

    Every piece of source text is HTML-escaped, so markup inside an article renders as text.
    """
    if answer is None:
        return "<p class='where'>Sources for the latest answer appear here.</p>"
    if answer.refused:
        return "<div class='refused'>No source passage answers this question, so nothing is cited.</div>"
    cards = []
    for c in answer.citations:
        pieces, cursor = [], c.start
        for start, end in sorted(c.highlights):
            pieces.append(html.escape(c.text[cursor - c.start : start - c.start]))
            pieces.append(f"<mark>{html.escape(c.text[start - c.start : end - c.start])}</mark>")
            cursor = end
        pieces.append(html.escape(c.text[cursor - c.start :]))
        cards.append(
            f"<details class='source-card' open><summary>[{c.n}] {html.escape(c.title)}</summary>"
            f"<div class='where'>{html.escape(c.source)} · characters {c.start}–{c.end}</div>"
            f"<p>{''.join(pieces)}</p></details>"
        )
    return "".join(cards)


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


# Markdown as the chatbot renders it (marked, GitHub flavour): these characters mean something wherever they
# stand (HTML, links and images, emphasis, code, tables, entities, math, e-mail autolinks) ...
_MARKUP = re.compile(r"([\\`*_~\[\]<>&|$@])")
# ... these only in context: the "://" and "www." of autolinks, and the marks that open a block at a line's start.
_AUTOLINK = re.compile(r"(?i):(?=//)|(?<=www)\.")
_BLOCK_MARK = re.compile(r"(?m)^(\s*)([#+=-]|\d+(?=[.)]))")
# CommonMark lets a backslash escape any ASCII punctuation; undoing it is one rule.
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def as_markdown(text: str, *, emphasis: bool = False) -> str:
    """Text (a question, or an answer quoting sources) as Markdown that the chatbot shows verbatim.

    Links, images, HTML, autolinks, tables and LaTeX in the text stay characters; only the characters that
    would mean something are escaped, so screen readers and API clients see little noise. ``emphasis``
    wraps the whole turn in the app's own italics (used for refusals).
    """
    escaped = _MARKUP.sub(r"\\\1", text)
    escaped = _AUTOLINK.sub(lambda m: "\\" + m.group(0), escaped)
    escaped = _BLOCK_MARK.sub(lambda m: f"{m[1]}{m[2]}\\" if m[2][0].isdigit() else f"{m[1]}\\{m[2]}", escaped)
    return f"*{escaped}*" if emphasis and escaped else escaped


def from_markdown(shown: str) -> str:
    """The text of a turn the chatbot shows, undoing :func:`as_markdown`."""
    if len(shown) >= 2 and shown.startswith("*") and shown.endswith("*"):  # text never starts with a bare "*"
        shown = shown[1:-1]
    return _ESCAPED.sub(r"\1", shown)


def text_turns(chat: object) -> list[dict[str, str]]:
    """The conversation as text turns, from a chatbot value a client sent.

    Only the text of user and assistant turns is kept; file, image and component parts are dropped, so
    nothing a client names is ever handed back to gradio as a file to serve.
    """
    turns = []
    for message in chat if isinstance(chat, list) else []:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        parts = content if isinstance(content, list) else [content]
        texts = [
            part if isinstance(part, str) else part["text"]
            for part in parts
            if isinstance(part, str)
            or (isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str))
        ]
        if texts:
            turns.append({"role": message["role"], "content": _clean(from_markdown(" ".join(texts)))})
    return turns


def _clean(text: str) -> str:
    # Lone surrogates (valid in JSON, not in text) would fail later, deep in the pipeline.
    return text.encode("utf-8", "replace").decode("utf-8")


def _shown(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"role": t["role"], "content": as_markdown(t["content"])} for t in turns]


def build_ui(assistant: Assistant, feedback: FeedbackLog, *, documents: bool = False) -> gr.Blocks:
    """The chat page over the facade.

    Args:
        assistant: The facade every handler calls.
        feedback: Where ratings and their comments go.
        documents: Add the Documents tab (only when admin keys are configured).

    """
    with gr.Blocks(title="Assistant") as ui:
        # The answers given in this session, server-side: only these can be rated.
        answered = gr.State([])
        # The last rating stored in this session: a comment can be added to it, and to nothing else.
        rated = gr.State(None)
        gr.Markdown("## Ask the sources\nShort answers with numbered citations to the exact passages.")
        # Nothing to show: it only runs the script that makes copy buttons copy the shown text.
        script = resources.files("assistant").joinpath("static/chat.js").read_text(encoding="utf-8")
        gr.HTML("", js_on_load=script, padding=False, container=False)
        with gr.Tabs() if documents else contextlib.nullcontext():
            with gr.Tab("Chat") if documents else contextlib.nullcontext(), gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=300):
                    hint = gr.HTML(landing_hint(assistant))
                    chatbot = gr.Chatbot(
                        label="Chat", height=460, feedback_options=("Like", "Dislike"),
                        latex_delimiters=[], allow_tags=False,
                    )  # fmt: skip
                    with gr.Row(visible=False) as comment_row:
                        comment = gr.Textbox(
                            placeholder="Add a comment to your rating (optional)", show_label=False, scale=5,
                            max_length=LIMITS["comment"],
                        )  # fmt: skip
                        send_comment = gr.Button("Send comment", scale=1, min_width=80)
                    with gr.Row():
                        box = gr.Textbox(
                            placeholder="Ask a question about the sources…", show_label=False, scale=5,
                            autofocus=True,
                        )  # fmt: skip
                        send = gr.Button("Ask", variant="primary", scale=1, min_width=80)
                    examples = example_questions(assistant)
                    if examples:
                        gr.Examples(examples=[[q] for q in examples], inputs=[box], label="Try")
                    clear = gr.Button("New conversation", size="sm")
                with gr.Column(scale=2, min_width=280):
                    cards = gr.HTML(render_citations(None), label="Sources cited")
                    with gr.Accordion("Indexed sources", open=False) as indexed:
                        listed = gr.HTML(sources_list(assistant.sources()))
            if documents:
                with gr.Tab("Documents"):
                    panel = documents_panel()

        def respond(message: str, chat: list, given: list[dict] | None):
            question = _clean(message) if isinstance(message, str) else ""
            if not question.strip():  # nothing asked: no bubble, no warning, the box stays as it is
                yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
                return
            history = text_turns(chat)
            shown = [*_shown(history), {"role": "user", "content": as_markdown(question)}]
            given = list(given or [])
            try:
                answer = assistant.ask(question, history)
            except AssistantError as exc:
                shown.append({"role": "assistant", "content": "⚠️ " + as_markdown(exc.message)})
                yield shown, "", render_citations(None), given
                return
            given = [*given, {"question": question, **answer.to_dict()}][-50:]
            shown.append({"role": "assistant", "content": ""})
            text = ""
            for piece in answer.answer.split("] "):
                text += piece if piece.endswith("]") or piece == answer.answer else piece + "] "
                shown[-1] = {"role": "assistant", "content": as_markdown(text, emphasis=answer.refused)}
                yield shown, "", render_citations(answer), given
            shown[-1] = {"role": "assistant", "content": as_markdown(answer.answer, emphasis=answer.refused)}
            yield shown, "", render_citations(answer), given

        def rate(data: gr.LikeData, given: list[dict] | None):
            # The rated text comes from the client; only an answer this session was given is stored,
            # with the question, text and citations the server kept for it.
            turn = text_turns([{"role": "assistant", "content": data.value}])
            entry = next((g for g in reversed(given or []) if turn and g["answer"] == turn[0]["content"]), None)
            rating = {True: "up", "Like": "up", False: "down", "Dislike": "down"}.get(data.liked)
            if entry is None or rating is None:
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
                citations=last.get("citations", []), comment=_clean(text).strip(), entry_id=last["id"],
            )  # fmt: skip
            gr.Info("Thanks, your comment was saved.")
            return stored, "", gr.update(visible=False)

        def refresh() -> tuple[str, str]:
            return landing_hint(assistant), sources_list(assistant.sources())

        box.submit(respond, [box, chatbot, answered], [chatbot, box, cards, answered], api_name="chat")
        send.click(respond, [box, chatbot, answered], [chatbot, box, cards, answered], api_visibility="private")
        chatbot.like(rate, [answered], [rated, comment_row], api_visibility="private")
        comment.submit(add_comment, [comment, rated], [rated, comment, comment_row], api_visibility="private")
        send_comment.click(add_comment, [comment, rated], [rated, comment, comment_row], api_visibility="private")
        clear.click(
            lambda: ([], render_citations(None), [], None, gr.update(visible=False)), None,
            [chatbot, cards, answered, rated, comment_row], api_visibility="private",
        )  # fmt: skip
        # The sources folder is followed while serving: the list and the hint are read again when the page
        # loads, when the list is opened, and after the Documents tab changed something.
        ui.load(refresh, None, [hint, listed], api_visibility="private")
        indexed.expand(refresh, None, [hint, listed], api_visibility="private")
        if documents:
            panel.change(refresh, None, [hint, listed], api_visibility="private")
    ui.css = CSS
    return ui
