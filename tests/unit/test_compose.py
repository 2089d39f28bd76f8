"""Composing an answer from chosen sentences."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from assistant.answer.compose import LEAD_IN_ITEMS, _complete_lead_ins
from assistant.answer.evidence import SentenceRef


def _passage(*texts: str) -> list[SentenceRef]:
    refs, at = [], 0
    for position, text in enumerate(texts):
        refs.append(SentenceRef(0, position, text, at, at + len(text), np.zeros(3), frozenset()))
        at += len(text) + 1
    return refs


def test_a_lead_in_quotes_the_items_it_introduces():
    group = _passage("Success targets, agreed by all:", "- 20% of orders online.", "- Under 2% not ready.",
                     "- Rating of 4.2 or more.", "- A fourth item.", "Next topic.")  # fmt: skip
    table = SimpleNamespace(evidence=SimpleNamespace(sentences=[group]))
    chosen = _complete_lead_ins(table, [group[0]])
    assert [s.text for s in chosen] == [s.text for s in group[: 1 + LEAD_IN_ITEMS]]


def test_items_stop_at_the_next_heading_and_are_not_repeated():
    group = _passage("Targets:", "- 20% of orders online.", "## Budget", "The budget is £20,000.")
    table = SimpleNamespace(evidence=SimpleNamespace(sentences=[group]))
    chosen = _complete_lead_ins(table, [group[0], group[1]])
    assert [s.text for s in chosen] == ["Targets:", "- 20% of orders online."]


def test_a_complete_sentence_is_left_alone():
    group = _passage("The budget is £20,000.", "It was approved in April.")
    table = SimpleNamespace(evidence=SimpleNamespace(sentences=[group]))
    assert _complete_lead_ins(table, [group[0]]) == [group[0]]
