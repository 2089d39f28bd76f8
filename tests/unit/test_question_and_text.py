"""Question analysis, input validation and text utilities."""

from __future__ import annotations

import pytest

from assistant.answer.question import (
    AnswerType,
    QuestionForm,
    analyse,
    answer_type,
    asks_reason,
    asks_time_span,
    is_elliptical,
    validate_history,
    validate_question,
)
from assistant.errors import InputError
from assistant.text import CAUSAL, TIME_SPAN, is_heading, proper_names, sentences, terms


@pytest.mark.parametrize("bad", ["", "   \n\t", None, 42, ["q"]])
def test_empty_or_non_string_questions_are_rejected(bad):
    with pytest.raises(InputError):
        validate_question(bad, 2000)


def test_long_question_is_rejected_with_the_limit():
    with pytest.raises(InputError, match=r"too long.*2000"):
        validate_question("why " * 25_000, 2000)


def test_nul_bytes_are_dropped():
    assert validate_question("what\x00 now?", 100) == "what  now?"


@pytest.mark.parametrize(
    "history",
    [
        "not a list",
        [{"role": "system", "content": "x"}],
        [{"role": "user"}],
        [{"role": "user", "content": 3}],
        [{"role": "user", "content": "x", "extra": 1}],
        ["just a string"],
    ],
)
def test_malformed_history_is_rejected(history):
    with pytest.raises(InputError, match="history"):
        validate_history(history, 20)


def test_history_keeps_the_last_turns():
    turns = [{"role": "user", "content": str(i)} for i in range(30)]
    assert [t["content"] for t in validate_history(turns, 4)] == ["26", "27", "28", "29"]


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many stores are there?", AnswerType.NUMBER),
        ("What does the car cost?", AnswerType.NUMBER),
        ("When will it launch?", AnswerType.DATE),
        ("Who runs the company?", AnswerType.PERSON),
        ("Where is the head office?", AnswerType.PLACE),
        ("What is the strategy?", AnswerType.OTHER),
    ],
)
def test_answer_types(question, kind):
    assert answer_type(question) is kind


def test_follow_up_borrows_the_previous_question():
    history = [{"role": "user", "content": "Where did the company open its exhibition?"}]
    q = analyse("What did it show there?", history)
    assert "exhibit" in q.context_terms and "Where did" in q.search_text
    standalone = analyse("What did Xiaomi show at the exhibition in Paris?", [])
    assert standalone.context_terms == [] and standalone.search_text == standalone.text


def test_compound_question_is_split():
    q = analyse("What is the price of the car and when will it be sold in Europe?", [])
    assert len(q.parts) == 2
    assert q.parts[1].kind is AnswerType.DATE


def test_terms_stem_and_fold():
    assert terms("Xiaomi’s shipped vehicles, USD 28,000") == ["xiaomi", "ship", "vehicl", "dollar", "28000"]
    assert "write" in terms("It was written by her") and "sell" in terms("units sold")


def test_sentences_keep_offsets_and_respect_abbreviations():
    text = "Dr. Smith met Mr. Jones in the U.S. office. Sales rose 5.5% in Q3! Next line\nHeading"
    spans = sentences(text, offset=10)
    assert [s.text for s in spans] == [
        "Dr. Smith met Mr. Jones in the U.S. office.",
        "Sales rose 5.5% in Q3!",
        "Next line",
        "Heading",
    ]
    for s in spans:
        assert text[s.start - 10 : s.end - 10] == s.text


def test_clause_openers_and_capitalised_stopwords_are_not_names():
    assert proper_names("The hurdles are: Not having a team in Europe") == {"europe"}
    assert proper_names("Sales grew.\n- Having dealers helped Xiaomi\n2. Pricing") == {"xiaomi"}
    assert proper_names("The SU7 - Xiaomi's sedan - sells") == {"su7", "xiaomi"}


def test_metadata_lines_are_statements_not_headings():
    assert is_heading("Overcoming export challenges")
    assert not is_heading("outlet: KrASIA (originally published by 36Kr)")
    assert not is_heading("Note: the office is closed on Fridays")


def test_list_numbering_does_not_end_a_sentence():
    text = "1. Scope\nThis applies to all staff. 2.3. Carry-over is allowed. We sold 3. Then more."
    assert [s.text for s in sentences(text)] == [
        "1. Scope", "This applies to all staff.", "2.3. Carry-over is allowed.", "We sold 3.", "Then more."
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "elliptical"),
    [("And bread?", True), ("What about contractors?", True), ("And for the other team?", True),
     ("And what if it slips again?", False), ("And how much is it?", False), ("Who approves it?", False)],
)  # fmt: skip
def test_elliptical_follow_ups_name_only_a_new_case(text, elliptical):
    assert is_elliptical(text) is elliptical


def test_an_elliptical_follow_up_asks_what_the_last_question_asked():
    history = [{"role": "user", "content": "How many days of leave do new starters get?"},
               {"role": "assistant", "content": "New starters get 25 days. [1]"}]  # fmt: skip
    question = analyse("And part-timers?", history)
    assert question.kind is AnswerType.NUMBER
    assert question.form is QuestionForm.FACT
    assert "days" in question.context_text


def test_reason_and_time_span_cues():
    assert asks_reason("Why was Harrogate dropped?") and not asks_reason("When was it dropped?")
    assert asks_time_span("How late can I order a cake?") and not asks_time_span("How many shops are there?")
    assert CAUSAL.search("It closed because of a refurbishment") and not CAUSAL.search("It closed in July")
    assert TIME_SPAN.search("Orders need 48 hours' notice") and TIME_SPAN.search("We meet every four weeks")
    assert not TIME_SPAN.search("The pilot runs in three shops")


def test_it_points_at_what_the_last_answer_named():
    history = [{"role": "user", "content": "Which car model did Xiaomi ship to France?"},
               {"role": "assistant", "content": "Xiaomi shipped two SU7 vehicles to France [1]."}]  # fmt: skip
    assert "su7" in analyse("And what does it cost?", history).search_text.lower()
    assert "su7" not in analyse("And in Germany?", history).search_text.lower()  # no pronoun: nothing to resolve
