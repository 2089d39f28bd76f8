"""Source cards: every answer of a conversation keeps its own, and the selected answer's are shown.

All of it is HTML built here with every piece of source text escaped, so markup inside a document renders as
text. The cards of every answer are in the page at once (one ``section`` per answer); ``static/chat.js``
shows the section of the answer a user clicks, or whose ``[n]`` link they follow.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import quote

from assistant.ui.markdown import card_anchor

EMPTY = "<p class='where'>Sources for the latest answer appear here.</p>"
REFUSED = "<div class='refused'>No source passage answers this question, so nothing is cited.</div>"
NO_SOURCES = "<p class='where'>This answer cites no sources.</p>"


#: A PDF citation's location ("page 3", "pages 3–4"): the viewer opens at the first page.
_PAGE = re.compile(r"^pages? (\d+)")
#: Text formats are served as plain text, where the browser can find and scroll to a passage.
_TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")


def document_url(source: str) -> str:
    """Where the indexed original of ``source`` is served read-only (``GET /api/sources/...``), percent-encoded.

    Each path segment of the id is encoded on its own, so a source in a subfolder keeps its folders.
    """
    return "/api/sources/" + quote(source, safe="/")


def _fragment_text(words: list[str]) -> str:
    # A text directive's terms are percent-encoded, "-" and "," included (they separate its parts).
    return quote(" ".join(words), safe="").replace("-", "%2D")


def passage_url(citation: dict, document_link: Callable[[str], str] = document_url) -> str:
    """The document's URL, pointed at the passage where the browser can.

    A PDF opens at the passage's page; a text file (served as plain text) gets the first supporting sentence
    as a text fragment (``#:~:text=start,end``), which the browser scrolls to and highlights. The terms are
    short phrases from one sentence, so that a line break in the file rarely stops the match.

    Args:
        citation: A ``Citation.to_dict()`` shape.
        document_link: The URL that opens a source id's document (the server's, signed when keys are on).

    """
    url = document_link(citation["source"])
    page = _PAGE.match(citation.get("location", ""))
    if citation["source"].lower().endswith(".pdf"):
        return f"{url}#page={page[1]}" if page else url
    if not citation["source"].lower().endswith(_TEXT_SUFFIXES) or not citation.get("highlights"):
        return url
    a, b = min(tuple(h) for h in citation["highlights"])
    words = citation["text"][a - citation["start"] : b - citation["start"]].split()
    if not words:
        return url
    if len(words) <= 8:
        return f"{url}#:~:text={_fragment_text(words)}"
    return f"{url}#:~:text={_fragment_text(words[:4])},{_fragment_text(words[-3:])}"


def _passage(citation: dict) -> str:
    """The passage with its supporting sentences in ``<mark>``; spans are in source coordinates."""
    text, start = citation["text"], citation["start"]
    pieces, cursor = [], start
    for a, b in sorted(tuple(h) for h in citation.get("highlights", [])):
        if a < cursor or b <= a:  # overlapping or empty spans would repeat or reorder text
            continue
        pieces.append(html.escape(text[cursor - start : a - start]))
        pieces.append(f"<mark>{html.escape(text[a - start : b - start])}</mark>")
        cursor = b
    pieces.append(html.escape(text[cursor - start :]))
    return "".join(pieces)


def card(citation: dict, answer_no: int, document_link: Callable[[str], str] = document_url) -> str:
    """One source card: number and title, where the passage is, the passage, and a link to the document.

    Where it is: the citation's ``location`` (a page or a section heading) when the loader knew one, else the
    character span. ``document_link`` makes the document's URL (see :func:`passage_url`).
    """
    where = citation.get("location") or f"characters {citation['start']}–{citation['end']}"
    return (
        f"<details class='source-card' id='{card_anchor(answer_no, citation['n'])}' open>"
        f"<summary>[{citation['n']}] {html.escape(citation['title'])}</summary>"
        f"<div class='where'>{html.escape(citation['source'])} · {html.escape(where)}</div>"
        f"<p>{_passage(citation)}</p>"
        f"<a class='open-doc' href='{html.escape(passage_url(citation, document_link))}' target='_blank'"
        f" rel='noopener'>Open document</a></details>"
    )


def render_sources(turns: list[dict], document_link: Callable[[str], str] = document_url) -> str:
    """The source cards of every answer in ``turns`` (conversation turns), the latest answer's shown.

    Args:
        turns: ``{"role", "text", "refused", "citations"}`` dicts, oldest first; citations are
            ``Citation.to_dict()`` shapes.
        document_link: The URL that opens a source id's document. With API keys on, the server passes one that
            signs it, so the link opens in a browser (which sends no key); cards are built afresh each time, so
            a reopened conversation gets fresh links.

    """
    sections, question, answer_no = [], "", 0
    answers = sum(t["role"] == "assistant" for t in turns)
    for turn in turns:
        if turn["role"] == "user":
            question = turn["text"]
            continue
        if turn.get("refused"):
            body = REFUSED
        elif turn.get("citations"):
            body = "".join(card(c, answer_no, document_link) for c in turn["citations"])
        else:
            body = NO_SOURCES
        current = " current" if answer_no == answers - 1 else ""
        asked = question if len(question) <= 80 else question[:79] + "…"
        sections.append(
            f"<section class='answer-sources{current}' data-answer='{answer_no}'>"
            f"<p class='for'>Sources of answer {answer_no + 1}: “{html.escape(asked)}”</p>{body}</section>"
        )
        answer_no += 1
    return "".join(sections) or EMPTY
