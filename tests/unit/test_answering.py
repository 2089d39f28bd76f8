"""Facade behaviour with a fake embedder: citations only from retrieved passages, refusals, errors."""

from __future__ import annotations

import pytest

from assistant.answer.scorer import AnswerModels
from assistant.errors import InputError
from assistant.evaluation import EvalItem, score_item
from assistant.facade import Assistant
from assistant.store import PassageStore, make_client


@pytest.fixture
def assistant(workspace, fake_embedder):
    # Fake vectors carry no meaning, so the shipped answerability threshold does not apply: answer everything
    # the sentence model can rank, except where a test sets its own.
    models = AnswerModels.load()
    models.threshold = 0.0
    store = PassageStore(make_client(workspace), workspace.collection_name)
    bot = Assistant(workspace, fake_embedder, store, models=models)
    bot.ingest()
    return bot


def test_citations_are_numbered_and_only_cite_retrieved_passages(assistant):
    answer = assistant.ask("How many SU7 vehicles did Xiaomi ship to France in July?")
    assert not answer.refused
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for c in answer.citations:
        assert c.chunk_id in answer.retrieved
        assert f"[{c.n}]" in answer.answer
        for start, end in c.highlights:
            assert c.start <= start < end <= c.end


def test_unrelated_question_is_refused_with_the_shared_text(assistant):
    from assistant.prompts import refusal_text

    assistant.pipeline.models.threshold = 0.5
    answer = assistant.ask("Quantum chromodynamics lattice gauge?")
    assert answer.refused and answer.answer == refusal_text() and answer.citations == []


def test_empty_index_refuses_instead_of_failing(workspace, fake_embedder):
    store = PassageStore(make_client(workspace), workspace.collection_name)
    answer = Assistant(workspace, fake_embedder, store).ask("Anything?")
    assert answer.refused


@pytest.mark.parametrize("question", ["", "   ", "x" * 100_000])
def test_bad_questions_raise_input_errors(assistant, question):
    with pytest.raises(InputError):
        assistant.ask(question)


def test_malformed_history_raises_input_error(assistant):
    with pytest.raises(InputError):
        assistant.ask("And then?", history=[{"role": "bot", "content": "hi"}])


def test_to_dict_has_the_stable_shape(assistant):
    data = assistant.ask("Which Xiaomi executive announced the goal of 10,000 stores?").to_dict()
    assert {"answer", "refused", "citations", "timings_ms"} <= set(data)
    for c in data["citations"]:
        assert {"n", "source", "title", "text", "start", "end"} <= set(c)
    assert "total" in data["timings_ms"]


def test_scoring_needs_facts_in_answer_and_in_a_cited_passage():
    item = EvalItem("q", "How many?", [["two", "2"], ["SU7"]], True)
    good = {"answer": "Two SU7 cars [1].", "refused": False, "citations": [{"text": "shipped two SU7 cars"}]}
    unsupported = {"answer": "Two SU7 cars [1].", "refused": False, "citations": [{"text": "something else"}]}
    missing = {"answer": "Two cars [1].", "refused": False, "citations": [{"text": "two SU7"}]}
    refused = {"answer": "No.", "refused": True, "citations": []}
    assert score_item(item, good, [], 1).supported
    assert score_item(item, unsupported, [], 1).correct and not score_item(item, unsupported, [], 1).supported
    assert not score_item(item, missing, [], 1).correct
    assert not score_item(item, refused, [], 1).correct
    assert score_item(EvalItem("u", "?", [], False), refused, [], 1).correct


def test_repeated_questions_come_from_the_cache_until_the_index_changes(assistant):
    question = "How many SU7 vehicles did Xiaomi ship to France in July?"
    first = assistant.ask(question)
    second = assistant.ask(question)
    assert second.answer == first.answer and "cache" in second.timings_ms
    second.citations.clear()
    assert assistant.ask(question).citations, "callers cannot change the cached answer"
    (assistant.settings.paths.sources_dir / "new.md").write_text("# New\n\nThe SU7 is blue.\n")
    assistant.ingest()
    assert "cache" not in assistant.ask(question).timings_ms
