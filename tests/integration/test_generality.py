"""Answers on documents and wordings the models were not trained on: the held-out corpus, languages, names.

The meeting-notes corpus is the test split of tests/data/splits.json: nothing was trained or calibrated on
it. Its floors sit a few points under what the shipped models measure (see the model card), so a change
that loses generality fails here.
"""

from __future__ import annotations

import shutil

import pytest

from assistant.config import Settings
from assistant.evaluation import evaluate, load_items
from assistant.facade import Assistant
from assistant.prompts import not_english_text
from assistant.store import PassageStore, make_client
from tests.conftest import DATA

pytestmark = pytest.mark.integration

HELD_OUT = DATA / "corpora" / "meeting-notes"
ANSWERABLE_FLOOR = 0.55  # measured 0.581 (36/62); 0.661 before the stack moved to out-of-fold scores
REFUSAL_FLOOR = 0.5  # measured 0.607 (17/28); 0.500 before


@pytest.fixture(scope="module")
def meeting_notes(real_assistant, tmp_path_factory) -> Assistant:
    root = tmp_path_factory.mktemp("meeting-notes")
    shutil.copytree(HELD_OUT, root / "sources", ignore=shutil.ignore_patterns("*.jsonl"))
    settings = Settings(sources_dir=root / "sources", index_dir=root / "index", _env_file=None)
    bot = Assistant(settings, real_assistant.embedder, PassageStore(make_client(settings), settings.collection_name))
    bot.ingest()
    return bot


def test_held_out_corpus_meets_its_floor(meeting_notes):
    summary = evaluate(meeting_notes, load_items(HELD_OUT / "questions.jsonl"))["summary"]
    assert summary["answerable_accuracy"] >= ANSWERABLE_FLOOR, summary
    assert summary["refusal_accuracy"] >= REFUSAL_FLOOR, summary
    assert summary["citations_outside_retrieved"] == 0


@pytest.mark.parametrize(
    "question",
    ["Wie viele Autos hat Xiaomi nach Frankreich geliefert?", "¿Cuánto cuesta el SU7 en China?", "小米汽车多少钱？"],
)
def test_a_question_in_another_language_is_told_so(real_assistant, question):
    answer = real_assistant.ask(question)
    assert answer.refused and answer.answer == not_english_text() and not answer.citations


@pytest.mark.parametrize(
    "question",
    ["What is Tesla's market share in Europe?", "How many cars did BYD export to France?"],
)
def test_a_question_about_something_the_sources_never_mention_is_refused(real_assistant, question):
    assert real_assistant.ask(question).refused


def test_the_asked_number_is_marked_in_its_citation(real_assistant):
    answer = real_assistant.ask("How many SU7 vehicles did Xiaomi ship to France?")
    marked = [c.text[s - c.start : e - c.start] for c in answer.citations for s, e in c.focus]
    assert marked and marked[0].lower() in ("two", "2"), marked


def test_a_how_question_gets_several_points_from_the_sources(real_assistant):
    answer = real_assistant.ask("Why is Xiaomi expanding its car business abroad?")
    assert not answer.refused and answer.answer.count("[") >= 2, answer.answer
