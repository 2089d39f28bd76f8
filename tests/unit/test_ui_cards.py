"""Source cards, chat Markdown and the conversations the browser sends back (no server, no browser)."""

from __future__ import annotations

from assistant.ui.cards import render_sources
from assistant.ui.conversations import MAX_TURNS, aligned, for_browser, from_browser, shown
from assistant.ui.markdown import as_markdown, from_markdown, text_parts

CITATION = {
    "n": 1, "source": "policies/leave <2026>.md", "title": "Leave <b>policy</b>", "text": "Staff get 25 days. More.",
    "start": 100, "end": 124, "highlights": [[100, 118]], "location": "",
}  # fmt: skip


def conversation(*answers: dict) -> list[dict]:
    turns = []
    for i, answer in enumerate(answers):
        turns += [{"role": "user", "text": f"question {i}"}, {"role": "assistant", "text": "x [1].", **answer}]
    return turns


def test_cards_name_the_location_when_known_else_the_characters():
    with_location = render_sources(conversation({"citations": [{**CITATION, "location": "page 3"}]}))
    without = render_sources(conversation({"citations": [CITATION]}))
    assert "page 3" in with_location and "characters" not in with_location
    assert "characters 100–124" in without


def test_cards_escape_source_text_highlight_and_link_the_document():
    html = render_sources(conversation({"citations": [CITATION]}))
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert "<mark>Staff get 25 days.</mark>" in html
    assert "href='/api/sources/policies/leave%20%3C2026%3E.md#" in html


def test_every_answer_keeps_its_own_cards_and_the_latest_is_shown():
    other = {**CITATION, "text": "Other passage.", "end": 114, "highlights": []}
    html = render_sources(conversation({"citations": [CITATION]}, {"refused": True}, {"citations": [other]}))
    assert html.count("<section") == 3 and html.count("current") == 1
    assert "id='source-0-1'" in html and "id='source-2-1'" in html
    assert "data-answer='2'>" in html.split("current")[1][:20]
    assert "No source passage answers" in html


def test_markers_link_to_their_answers_cards_and_copy_back_as_text():
    shown_text = as_markdown("Staff get 25 days [1]. Not [7].", links=(4, {1}))
    assert "[\\[1\\]](#source-4-1)" in shown_text and "[7\\]](" not in shown_text
    assert from_markdown(shown_text) == "Staff get 25 days [1]. Not [7]."


def test_refusal_italics_survive_a_history_rebuilt_from_text():
    refusal = {"role": "assistant", "content": as_markdown("The sources don't say.", emphasis=True)}
    parts = text_parts([{"role": "user", "content": "q"}, refusal])
    turns = aligned(parts, [])
    assert turns[1]["refused"] is True
    assert shown(turns)[1]["content"] == refusal["content"]


def test_a_conversation_from_the_browser_is_checked_and_bounded():
    turns = conversation({"citations": [CITATION]}) * (MAX_TURNS // 2 + 5)
    bad = [
        {"role": "system", "text": "x"},
        {"role": "assistant", "text": "y", "citations": [{"n": "1"}, {**CITATION, "highlights": [[0, 10**9]]}]},
        {"role": "user", "text": {"type": "file"}},
    ]
    conv = from_browser({"id": "abc123", "title": "T", "turns": [*turns, *bad]})
    assert len(conv["turns"]) <= MAX_TURNS and conv["turns"][0]["role"] == "user"
    last = conv["turns"][-1]
    assert last["text"] == "y" and len(last["citations"]) == 1 and last["citations"][0]["highlights"] == []
    assert from_browser({"id": "../x", "turns": []}) is None and from_browser("nope") is None
    assert for_browser({"id": "a", "title": "", "turns": []}) is None


def test_open_document_points_at_the_page_or_the_passage():
    from assistant.ui.cards import passage_url

    pdf = {**CITATION, "source": "bike-policy.pdf", "location": "pages 3–4"}
    assert passage_url(pdf) == "/api/sources/bike-policy.pdf#page=3"
    assert passage_url({**pdf, "location": ""}) == "/api/sources/bike-policy.pdf"
    long = {**CITATION, "text": "Staff get twenty-five paid days, a year, from the first day on. More.", "end": 169,
            "highlights": [[100, 164]]}  # fmt: skip
    assert passage_url(long).endswith(".md#:~:text=Staff%20get%20twenty%2Dfive%20paid,first%20day%20on.")
    assert passage_url(CITATION).endswith(".md#:~:text=Staff%20get%2025%20days.")
    assert "#" not in passage_url({**CITATION, "highlights": []})
