"""Chat turns as the chatbot's Markdown and back: source text shown verbatim, ``[n]`` as links to cards."""

from __future__ import annotations

import re

# Markdown as the chatbot renders it (marked, GitHub flavour): these characters mean something wherever they
# stand (HTML, links and images, emphasis, code, tables, entities, math, e-mail autolinks) ...
_MARKUP = re.compile(r"([\\`*_~\[\]<>&|$@])")
# ... these only in context: the "://" and "www." of autolinks, and the marks that open a block at a line's start.
_AUTOLINK = re.compile(r"(?i):(?=//)|(?<=www)\.")
_BLOCK_MARK = re.compile(r"(?m)^(\s*)([#+=-]|\d+(?=[.)]))")
# CommonMark lets a backslash escape any ASCII punctuation; undoing it is one rule.
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
# A citation marker after escaping, and the link the app makes of it (to the card with that anchor).
_MARKER = re.compile(r"\\\[(\d+)\\\]")
_MARKER_LINK = re.compile(r"\[(\\\[\d+\\\])\]\(#source-\d+-\d+\)")


def card_anchor(answer_no: int, n: int) -> str:
    """The HTML id of the card for citation ``n`` of the conversation's ``answer_no``-th answer (from 0)."""
    return f"source-{answer_no}-{n}"


def as_markdown(text: str, *, emphasis: bool = False, links: tuple[int, set[int]] | None = None) -> str:
    """Text (a question, or an answer quoting sources) as Markdown that the chatbot shows verbatim.

    Links, images, HTML, autolinks, tables and LaTeX in the text stay characters; only the characters that
    would mean something are escaped, so screen readers and API clients see little noise.

    Args:
        text: The turn's text.
        emphasis: Wrap the whole turn in the app's own italics (used for refusals).
        links: ``(answer_no, numbers)``: each ``[n]`` marker whose ``n`` is among the answer's citation
            numbers becomes a link to that answer's card ``n`` (the app's own link; source text cannot make one,
            its brackets are escaped like everything else).

    """
    escaped = _MARKUP.sub(r"\\\1", text)
    escaped = _AUTOLINK.sub(lambda m: "\\" + m.group(0), escaped)
    escaped = _BLOCK_MARK.sub(lambda m: f"{m[1]}{m[2]}\\" if m[2][0].isdigit() else f"{m[1]}\\{m[2]}", escaped)
    if links is not None:
        answer_no, numbers = links
        escaped = _MARKER.sub(
            lambda m: f"[{m[0]}](#{card_anchor(answer_no, int(m[1]))})" if int(m[1]) in numbers else m[0], escaped
        )
    return f"*{escaped}*" if emphasis and escaped else escaped


def is_emphasised(shown: str) -> bool:
    """Whether a shown turn is wrapped in the app's italics (a refusal): text never starts with a bare ``*``."""
    return len(shown) >= 2 and shown.startswith("*") and shown.endswith("*")


def from_markdown(shown: str) -> str:
    """The text of a turn the chatbot shows, undoing :func:`as_markdown`."""
    if is_emphasised(shown):
        shown = shown[1:-1]
    return _ESCAPED.sub(r"\1", _MARKER_LINK.sub(r"\1", shown))


def clean(text: str) -> str:
    """Text with lone surrogates (valid in JSON, not in text, and failing later deep in the pipeline) replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


def text_parts(chat: object) -> list[tuple[str, str, bool]]:
    """``(role, text, emphasised)`` of each user and assistant turn of a chatbot value a client sent.

    Only the text parts are kept; file, image and component parts are dropped, so nothing a client names is
    ever handed back to gradio as a file to serve.
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
            shown = " ".join(texts)
            turns.append((message["role"], clean(from_markdown(shown)), is_emphasised(shown)))
    return turns


def text_turns(chat: object) -> list[dict[str, str]]:
    """The conversation as text turns (``role``, ``content``), from a chatbot value a client sent."""
    return [{"role": role, "content": text} for role, text, _ in text_parts(chat)]
