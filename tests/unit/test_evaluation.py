"""Evaluation: the SQuAD reader, the seeded sample, the temporary index folder and the summary figures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.answer.types import Answer
from assistant.config import Settings
from assistant.errors import InputError
from assistant.evaluation import (
    EvalItem,
    count_words,
    evaluate,
    is_squad,
    load_items,
    load_squad,
    percentile,
    sample_items,
    score_item,
    temporary_index,
)
from assistant.ingest.loaders import load_source

SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Tiny_town",
            "paragraphs": [
                {
                    "context": "Tiny Town was founded in 1850 by Ada Lovelace.",
                    "qas": [
                        {"id": "a1", "question": "When was Tiny Town founded?", "is_impossible": False,
                         "answers": [{"text": "1850", "answer_start": 25}, {"text": "1850", "answer_start": 25},
                                     {"text": "in 1850", "answer_start": 22}]},
                        {"id": "u1", "question": "When did Tiny Town close?", "is_impossible": True,
                         "answers": [], "plausible_answers": [{"text": "1850", "answer_start": 25}]},
                    ],
                },
                {
                    "context": "  Its river is the Wend.  ",
                    "qas": [{"id": "a2", "question": "Which river?", "is_impossible": False,
                             "answers": [{"text": "the Wend", "answer_start": 16}]}],
                },
            ],
        },
        {
            "title": "Other place",
            "paragraphs": [
                {
                    "context": "Other Place has 12 bridges.",
                    "qas": [
                        {"id": "b1", "question": "How many bridges?", "is_impossible": False,
                         "answers": [{"text": "12", "answer_start": 16}]},
                        {"id": "b2", "question": "Broken: answerable with no answer text", "is_impossible": False,
                         "answers": []},
                    ],
                }
            ],
        },
    ],
}  # fmt: skip


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    return path


def test_squad_reader_builds_articles_and_one_fact_group_of_all_gold_answers(squad_file):
    assert is_squad(squad_file)
    squad = load_squad(squad_file)
    assert list(squad.articles) == ["Tiny town", "Other place"]
    assert squad.articles["Tiny town"] == "Tiny Town was founded in 1850 by Ada Lovelace.\n\nIts river is the Wend."
    by_id = {item.id: item for item in squad.items}
    assert list(by_id) == ["a1", "u1", "a2", "b1"]  # b2 has nothing to score against
    assert by_id["a1"].facts == [["1850", "in 1850"]] and by_id["a1"].answerable
    assert by_id["u1"].facts == [] and not by_id["u1"].answerable  # plausible answers are not gold


def test_squad_reader_keeps_only_the_named_articles(squad_file):
    squad = load_squad(squad_file, ["other PLACE"])
    assert list(squad.articles) == ["Other place"] and [i.id for i in squad.items] == ["b1"]
    assert [i.id for i in load_squad(squad_file, ["Tiny_town"]).items] == ["a1", "u1", "a2"]
    with pytest.raises(InputError, match="no article Atlantis; it has Tiny_town, Other place"):
        load_squad(squad_file, ["Atlantis"])


def test_jsonl_is_not_squad_and_bad_squad_files_are_input_errors(tmp_path):
    jsonl = tmp_path / "qa.jsonl"
    jsonl.write_text('{"id": "1", "question": "Q?", "facts": [["x"]]}\n{"id": "2", "question": "R?"}\n')
    one_line = tmp_path / "one.jsonl"
    one_line.write_text('{"id": "1", "question": "Q?", "facts": [["x"]]}\n')
    assert not is_squad(jsonl) and not is_squad(one_line) and not is_squad(tmp_path / "missing.json")
    assert len(load_items(one_line)) == 1
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}))
    with pytest.raises(InputError, match="not a SQuAD file"):
        load_squad(broken)


def _items(answerable: int, unanswerable: int) -> list[EvalItem]:
    return [EvalItem(f"a{i}", "q", [["x"]], True) for i in range(answerable)] + [
        EvalItem(f"u{i}", "q", [], False) for i in range(unanswerable)
    ]


def test_sample_is_seeded_stratified_and_in_file_order():
    items = _items(30, 10)
    sample = sample_items(items, 10, seed=0)
    assert sum(i.answerable for i in sample) == 5 and len({i.id for i in sample}) == 10
    assert sample == sample_items(items, 10, seed=0) and sample != sample_items(items, 10, seed=1)
    assert [items.index(i) for i in sample] == sorted(items.index(i) for i in sample)
    short = sample_items(_items(30, 2), 10)  # too few unanswerable: answerable ones fill the sample
    assert sum(not i.answerable for i in short) == 2 and len(short) == 10
    assert sample_items(items, 100) == items


def test_temporary_index_writes_sources_the_markdown_loader_titles_and_removes_them(squad_file):
    settings = Settings(sources_dir="elsewhere", index_dir="elsewhere-index", chroma_host="chroma.internal",
                        _env_file=None)  # fmt: skip
    with temporary_index(settings, load_squad(squad_file).articles) as local:
        files = sorted(local.paths.sources_dir.glob("*.md"))
        documents = [load_source(f, f.read_bytes()) for f in files]
        root = local.paths.sources_dir.parent
        assert local.paths.index_dir == root / "index" and local.chroma.host is None
        assert local.collection_name == settings.collection_name  # same embedder and chunking
    assert [d.title for d in documents] == ["Tiny town", "Other place"]
    assert documents[0].text.startswith("Tiny Town was founded in 1850")
    assert not root.exists()
    assert settings.paths.sources_dir == Path("elsewhere") and settings.chroma.host == "chroma.internal"


def test_any_gold_answer_counts_and_words_leave_out_citation_marks():
    item = EvalItem("a1", "When was Tiny Town founded?", [["1850", "in 1850"]], True)
    answer = {"answer": "It was founded IN 1850 by Ada. [1] [2]", "refused": False, "citations": []}
    result = score_item(item, answer, ["Tiny Town was founded in 1850."], 12.0)
    assert result.correct and result.retrieval_hit and result.words == 7
    refused = score_item(item, {"answer": "The sources don't say.", "refused": True, "citations": []}, [], 1.0)
    assert not refused.correct and refused.words == 0
    assert count_words("[1]") == 0


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) == 0.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0


class _StubAssistant:
    """Answers from a table; enough of the facade for ``evaluate``."""

    def __init__(self, answers: dict[str, Answer], passages: dict[str, str]) -> None:
        self.answers = answers
        self.settings = Settings(_env_file=None)
        self.corpus = SimpleNamespace(row=passages, passage=lambda pid: SimpleNamespace(text=passages[pid]))

    def ask(self, question: str, history: list[dict] | None = None) -> Answer:
        return self.answers[question]


def test_summary_reports_words_per_answered_answer_and_the_squad_figures():
    items = [
        EvalItem("a1", "q1", [["1850"]], True),
        EvalItem("a2", "q2", [["Wend"]], True),
        EvalItem("u1", "q3", [], False),
        EvalItem("u2", "q4", [], False),
    ]
    answers = {
        "q1": Answer("Founded in 1850. [1]", False, retrieved=["p1"], timings_ms={"total": 10.0}),
        "q2": Answer("The sources don't say.", True, retrieved=["p2"], timings_ms={"total": 30.0}),
        "q3": Answer("The sources don't say.", True, timings_ms={"total": 20.0}),
        "q4": Answer("Twelve bridges cross it today. [1]", False, retrieved=["p1"], timings_ms={"total": 40.0}),
    }
    passages = {"p1": "Founded in 1850.", "p2": "The river is the Wend."}
    summary = evaluate(_StubAssistant(answers, passages), items)["summary"]
    assert summary["answerable_accuracy"] == 0.5 and summary["refusal_accuracy"] == 0.5
    assert summary["accuracy"] == 0.5 and summary["refused_unanswerable"] == "1/2"
    assert summary["retrieval_recall_at_k"] == 1.0
    assert summary["words_per_answer"] == 4.0  # (3 + 5) / 2 answered; refusals do not count
    assert summary["latency_ms_p50"] == 30.0 and summary["latency_ms_p95"] == 40.0
