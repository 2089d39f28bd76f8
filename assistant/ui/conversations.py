"""Conversations that last: kept in the user's browser (``localStorage``), never on the server.

The server keeps the open conversation in the session (a ``gr.State``) only to render it: its turns with,
for each answer, whether it was refused and the citations it made, so that every answer keeps its own
source cards. After each answer that record goes to the conversations panel (``static/conversations.js``),
which stores it in the browser and lists the earlier conversations to reopen, rename and delete. Reopening
sends one conversation back; it is client data, so :func:`from_browser` keeps only well-formed text and
numbers within bounds, and everything shown from it is escaped like any source text.
"""

from __future__ import annotations

import uuid
from importlib import resources

import gradio as gr

from assistant.ui.markdown import as_markdown, clean

#: Bounds on a conversation the browser sends back (the request body limit applies too).
MAX_TURNS = 40
MAX_CITATIONS = 20
MAX_TEXT = {"question": 2_000, "answer": 8_000, "passage": 8_000, "title": 500, "source": 500, "location": 300}
MAX_TITLE = 80

CSS = """
.conv-new{width:100%;padding:6px 10px;border:1px solid var(--border-color-primary);border-radius:6px;
  background:var(--button-secondary-background-fill);cursor:pointer;font-weight:600}
.conv-list{list-style:none;margin:8px 0 0;padding:0;max-height:420px;overflow-y:auto}
.conv-list li{display:flex;align-items:center;gap:4px;border-radius:6px;padding:2px 4px}
.conv-list li.open{background:var(--background-fill-secondary);font-weight:600}
.conv-open{flex:1;min-width:0;text-align:left;background:none;border:0;padding:4px 2px;cursor:pointer;
  overflow:hidden;text-overflow:ellipsis;white-space:nowrap;color:inherit;font:inherit}
.conv-list input{flex:1;min-width:0;padding:2px 4px}
.conv-act{background:none;border:0;cursor:pointer;padding:2px 4px;color:var(--body-text-color-subdued)}
.conv-empty{color:var(--body-text-color-subdued);font-size:.9em;margin:8px 0 0}
"""

TEMPLATE = """
<div class="conversations">
  <button type="button" class="conv-new">+ New conversation</button>
  <ul class="conv-list" aria-label="Earlier conversations"></ul>
  <p class="conv-empty">Your conversations are kept in this browser only.</p>
</div>"""


def new_conversation() -> dict:
    """An empty conversation with a fresh id (the browser files it under that id after its first answer)."""
    return {"id": uuid.uuid4().hex, "title": "", "turns": []}


def title_of(question: str) -> str:
    """A conversation's default title: its first question, shortened."""
    words = " ".join(question.split())
    return words if len(words) <= MAX_TITLE else words[: MAX_TITLE - 1] + "…"


def shown(turns: list[dict]) -> list[dict[str, str]]:
    """The chatbot's messages for conversation turns: refusals in italics, ``[n]`` linked to their cards."""
    messages, answer_no = [], 0
    for turn in turns:
        if turn["role"] == "user":
            messages.append({"role": "user", "content": as_markdown(turn["text"])})
            continue
        numbers = {c["n"] for c in turn.get("citations", [])}
        content = as_markdown(turn["text"], emphasis=bool(turn.get("refused")), links=(answer_no, numbers))
        messages.append({"role": "assistant", "content": content})
        answer_no += 1
    return messages


def aligned(parts: list[tuple[str, str, bool]], known: list[dict]) -> list[dict]:
    """Conversation turns for the chatbot's text parts, with each answer's citations where the session knows them.

    A turn keeps what the session recorded for it (refusal, citations) when role and text match the record at
    its position; otherwise (a client's own history) it has no citations, and an answer shown in the app's
    italics stays a refusal, so re-rendering never loses them.
    """
    turns = []
    for i, (role, text, emphasised) in enumerate(parts):
        known_turn = known[i] if i < len(known) else None
        if known_turn and known_turn["role"] == role and known_turn["text"] == text:
            turns.append(known_turn)
        elif role == "user":
            turns.append({"role": "user", "text": text})
        else:
            turns.append({"role": "assistant", "text": text, "refused": emphasised, "citations": []})
    return turns


def for_browser(conversation: dict | None) -> dict | None:
    """The record the browser stores: the conversation's latest turns, starting with a question."""
    if not conversation or not conversation["turns"]:
        return None
    turns = conversation["turns"][-MAX_TURNS:]
    while turns and turns[0]["role"] != "user":
        turns = turns[1:]
    return {**conversation, "turns": turns}


def _text(value: object, limit: int) -> str | None:
    return clean(value)[:limit] if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53 else None


def _citation(value: object) -> dict | None:
    if not isinstance(value, dict):
        return None
    c = {
        "n": _int(value.get("n")), "source": _text(value.get("source"), MAX_TEXT["source"]),
        "title": _text(value.get("title"), MAX_TEXT["title"]), "text": _text(value.get("text"), MAX_TEXT["passage"]),
        "start": _int(value.get("start")), "end": _int(value.get("end")),
        "location": _text(value.get("location", ""), MAX_TEXT["location"]),
    }  # fmt: skip
    if any(v is None for v in c.values()):
        return None
    spans = value.get("highlights")
    pairs = [s for s in (spans if isinstance(spans, list) else []) if isinstance(s, list) and len(s) == 2]
    c["highlights"] = [
        [a, b] for a, b in pairs
        if _int(a) is not None and _int(b) is not None and c["start"] <= a < b <= c["start"] + len(c["text"])
    ][:MAX_CITATIONS]  # fmt: skip
    return c


def _turn(value: object) -> dict | None:
    if not isinstance(value, dict) or value.get("role") not in ("user", "assistant"):
        return None
    user = value["role"] == "user"
    text = _text(value.get("text"), MAX_TEXT["question" if user else "answer"])
    if not text:
        return None
    if user:
        return {"role": "user", "text": text}
    cited = value.get("citations")
    citations = [c for c in map(_citation, cited if isinstance(cited, list) else []) if c][:MAX_CITATIONS]
    return {"role": "assistant", "text": text, "refused": value.get("refused") is True, "citations": citations}


def from_browser(value: object) -> dict | None:
    """A conversation the browser sent back, keeping only well-formed turns and citations within bounds."""
    if not isinstance(value, dict):
        return None
    ident = value.get("id")
    if not isinstance(ident, str) or not ident.isalnum() or len(ident) > 64:
        return None
    turns = [t for t in map(_turn, value.get("turns") if isinstance(value.get("turns"), list) else []) if t]
    turns = turns[-MAX_TURNS:]
    while turns and turns[0]["role"] != "user":  # a trimmed conversation starts with a question
        turns.pop(0)
    title = _text(value.get("title"), MAX_TITLE) or (title_of(turns[0]["text"]) if turns else "")
    return {"id": ident, "title": title, "turns": turns}


def conversations_panel() -> gr.HTML:
    """The list of the browser's conversations, with "New conversation"; its script does the storing.

    Events it triggers: ``open`` (event data ``conversation``: the stored record) and ``new``. Its value is the
    open conversation's record, set by the server after each answer; the script files it in the browser.
    """
    script = resources.files("assistant").joinpath("static/conversations.js").read_text(encoding="utf-8")
    return gr.HTML(
        None, html_template=TEMPLATE, css_template=CSS, js_on_load=script, elem_id="conversations",
        label="Conversations",
    )  # fmt: skip
