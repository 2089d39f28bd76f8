"""The gradio chat UI: streamed answers, numbered source cards with highlights, feedback."""

from __future__ import annotations

import html
import json

import gradio as gr

from assistant.answer.types import Answer
from assistant.errors import AssistantError
from assistant.facade import Assistant
from assistant.feedback import FeedbackLog

CSS = """
.source-card{border:1px solid var(--border-color-primary);border-radius:8px;padding:10px 12px;margin:8px 0}
.source-card summary{cursor:pointer;font-weight:600}
.source-card .where{color:var(--body-text-color-subdued);font-size:.85em}
.source-card p{white-space:pre-wrap;margin:.5em 0 0}
.source-card mark{background:#fde68a;color:#111;padding:0 1px}
.refused{border-left:4px solid #9ca3af;padding-left:10px;color:var(--body-text-color-subdued)}
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


def build_ui(assistant: Assistant, feedback: FeedbackLog) -> gr.Blocks:
    """The chat page over the facade."""
    with gr.Blocks(title="Assistant") as ui:
        last_answer = gr.State(None)
        gr.Markdown("## Ask the sources\nShort answers with numbered citations to the exact passages.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                chatbot = gr.Chatbot(label="Chat", height=460, feedback_options=("Like", "Dislike"))
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask a question about the sources…", show_label=False, scale=5, autofocus=True
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80)
                examples = example_questions(assistant)
                if examples:
                    gr.Examples(examples=[[q] for q in examples], inputs=[box], label="Try")
                clear = gr.Button("New conversation", size="sm")
            with gr.Column(scale=2, min_width=280):
                cards = gr.HTML(render_citations(None), label="Sources cited")
                with gr.Accordion("Indexed sources", open=False):
                    gr.Markdown(
                        "\n".join(
                            f"- **{html.escape(s['title'])}** — `{html.escape(s['source'])}` ({s['chunks']} passages)"
                            for s in assistant.sources()
                        )
                        or "_No sources indexed._"
                    )

        def respond(message: str, chat: list[dict]):
            chat = list(chat or [])
            history = [{"role": m["role"], "content": _text(m["content"])} for m in chat]
            chat.append({"role": "user", "content": message})
            try:
                answer = assistant.ask(message, history)
            except AssistantError as exc:
                chat.append({"role": "assistant", "content": f"⚠️ {exc.message}"})
                yield chat, "", render_citations(None), None
                return
            chat.append({"role": "assistant", "content": ""})
            text = ""
            for piece in answer.answer.split("] "):
                text += piece if piece.endswith("]") or piece == answer.answer else piece + "] "
                chat[-1] = {"role": "assistant", "content": text if not answer.refused else f"*{text}*"}
                yield chat, "", render_citations(answer), answer.to_dict()
            chat[-1] = {"role": "assistant", "content": answer.answer if not answer.refused else f"*{answer.answer}*"}
            yield chat, "", render_citations(answer), answer.to_dict()

        def rate(data: gr.LikeData, chat: list[dict], last: dict | None) -> None:
            if data.index is None:
                return
            index = data.index if isinstance(data.index, int) else data.index[0]
            question = next((_text(m["content"]) for m in reversed(chat[:index]) if m["role"] == "user"), "")
            feedback.record(
                rating="up" if data.liked else "down",
                question=question,
                answer=_text(chat[index]["content"]),
                citations=(last or {}).get("citations", []),
            )
            gr.Info("Thanks, your feedback was saved.")

        box.submit(respond, [box, chatbot], [chatbot, box, cards, last_answer], api_name="chat")
        send.click(respond, [box, chatbot], [chatbot, box, cards, last_answer], api_name=False)
        chatbot.like(rate, [chatbot, last_answer], None)
        clear.click(lambda: ([], render_citations(None), None), None, [chatbot, cards, last_answer], api_name=False)
    ui.css = CSS
    return ui


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)
    return json.dumps(content) if content is not None else ""
