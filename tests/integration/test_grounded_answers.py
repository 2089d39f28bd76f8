"""Answers are grounded: each known fact is in the answer AND in a passage it cites; refusals hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.evaluation import evaluate, load_items
from tests.conftest import DATA

pytestmark = pytest.mark.integration

DEV = [json.loads(line) for line in (DATA / "dev_qa.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("item", [i for i in DEV if i["answerable"]], ids=lambda i: i["id"])
def test_each_fact_is_in_the_answer_and_in_a_cited_passage(real_assistant, item):
    answer = real_assistant.ask(item["question"], item.get("history"))
    assert not answer.refused, answer.answer
    cited = " ".join(c.text for c in answer.citations).lower()
    for alternatives in item["facts"]:
        assert any(a.lower() in answer.answer.lower() for a in alternatives), (alternatives, answer.answer)
        assert any(a.lower() in cited for a in alternatives), (alternatives, "not in a cited passage")


@pytest.mark.parametrize("item", [pytest.param(i, id=i["id"]) for i in DEV if not i["answerable"]])
def test_questions_the_sources_do_not_answer_are_refused(real_assistant, item):
    answer = real_assistant.ask(item["question"])
    assert answer.refused and not answer.citations


def test_citation_spans_point_at_the_cited_text_in_the_source_file(real_assistant, real_settings):
    answer = real_assistant.ask("What is the SU7's price in China?")
    assert answer.citations
    for c in answer.citations:
        raw = (real_settings.paths.sources_dir / c.source).read_text(encoding="utf-8")
        assert raw[c.start : c.end] == c.text
        for start, end in c.highlights:
            assert raw[start:end] in answer.answer


@pytest.mark.xfail(
    reason="issue 11: the retrained models rank the France-shipment sentence over the SU7's price for 'And what does "
    "it cost?' (the search text carries the last question); the follow-up sets score it, see the model card",
    strict=False,
)
def test_follow_up_is_understood_from_history(real_assistant):
    history = [
        {"role": "user", "content": "Which car model did Xiaomi ship to France?"},
        {"role": "assistant", "content": "Xiaomi shipped two SU7 vehicles to France [1]."},
    ]
    answer = real_assistant.ask("And what does it cost?", history)
    assert not answer.refused and "28,000" in answer.answer
    alone = real_assistant.ask("And what does it cost?")
    assert alone.refused or "28,000" not in alone.answer or alone.confidence < answer.confidence


def test_unrelated_context_yields_the_refusal(real_assistant):
    assert real_assistant.ask("Explain the offside rule in football.").refused


def test_several_facts_from_several_sentences(real_assistant):
    answer = real_assistant.ask("What is the SU7's price in China, and when does Lei Jun aim to sell cars in Europe?")
    assert "28,000" in answer.answer and "2030" in answer.answer


def test_dev_and_extra_sets_meet_the_targets(real_assistant):
    dev = evaluate(real_assistant, load_items(DATA / "dev_qa.jsonl"))["summary"]
    # Issue 11's target for the dev set: 0.95 with 3/3 refused (the learned models, never trained or calibrated on
    # this article, measure 15/15). Extra's floor sits under its measured figure (25/30 with the stack fitted on
    # out-of-fold scores, 27/30 before it: two more refusals of answerable questions).
    assert dev["answerable_accuracy"] >= 0.95 and dev["citation_support"] >= 0.95, dev
    assert dev["accuracy"] >= 0.95 and dev["refused_unanswerable"] == "3/3", dev
    extra = evaluate(real_assistant, load_items(DATA / "extra_qa.jsonl"))["summary"]
    assert extra["accuracy"] >= 0.8, extra


SHARED_DEV = Path(__file__).resolve().parents[3] / "shared" / "eval" / "dev_qa.jsonl"


@pytest.mark.skipif(not SHARED_DEV.exists(), reason="no ../shared beside the repository (a user's clone)")
def test_shared_dev_set_meets_the_target_through_the_cli(real_settings, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "ASSISTANT_SOURCES_DIR": str(real_settings.paths.sources_dir),
           "ASSISTANT_INDEX_DIR": str(real_settings.paths.index_dir)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "eval", str(SHARED_DEV), "--min-accuracy", "0.95",
         "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_the_cross_encoder_reads_only_the_shortlist_the_models_were_calibrated_for(real_assistant, monkeypatch):
    models = real_assistant.pipeline.models
    read = []
    original = type(models.reranker).score
    monkeypatch.setattr(type(models.reranker), "score", lambda self, q, s: read.append(len(s)) or original(self, q, s))
    answer = real_assistant.ask("What is the SU7's price in China, and which factory builds it?")
    assert not answer.refused and read and all(n == models.cross_candidates for n in read)
