"""From scored candidates to the answer a user reads: which sentences, in what order, cited how."""

from __future__ import annotations

import numpy as np

from assistant.answer.evidence import SentenceRef
from assistant.answer.features import CandidateTable
from assistant.answer.question import AnswerType, QuestionForm
from assistant.answer.scorer import AnswerModels
from assistant.answer.types import Citation
from assistant.retrieval import Passage
from assistant.text import NUMBER, YEAR_OR_DATE, is_heading, proper_names

#: Most points an explanation, a how-to or a list gets.
MAX_POINTS = 4
#: Two sentences this similar say the same thing; the second adds length, not content.
NEAR_DUPLICATE = 0.9
#: Most items quoted after a sentence that introduces them ("Success targets, agreed by all:").
LEAD_IN_ITEMS = 3


def select(table: CandidateTable, probabilities: np.ndarray, models: AnswerModels) -> list[SentenceRef]:
    """The sentences that answer, best first.

    A fact or yes/no question gets its best sentence, and the runner-up only when the model is nearly as
    sure of it (the two together usually hold the fact). An explanation, a how-to or a list gets its best
    sentence with the one after it, then up to :data:`MAX_POINTS` sentences in all, from different
    passages first, never two that say the same thing.
    """
    if not table.refs:
        return []
    order = [int(i) for i in np.argsort(-probabilities, kind="stable")]
    best = probabilities[order[0]]
    several = table.question.form in (QuestionForm.EXPLAIN, QuestionForm.LIST)
    limit, ratio = (MAX_POINTS, models.point_ratio) if several else (2, models.second_ratio)
    chosen = [table.refs[order[0]]]
    if several:  # the sentence naming an explanation's topic is followed by its detail: keep them together
        following = _next_statement(table, chosen[0])
        if following is not None:
            chosen.append(following)
    # Points from passages not yet used come first: breadth before depth.
    for fresh_passage_only in (True, False) if several else (False,):
        for i in order[1:]:
            if len(chosen) >= limit or probabilities[i] < ratio * best:
                break
            ref = table.refs[i]
            if ref in chosen or (fresh_passage_only and any(c.passage == ref.passage for c in chosen)):
                continue
            if any(float(np.dot(ref.vector, c.vector)) >= NEAR_DUPLICATE for c in chosen):
                continue
            chosen.append(ref)
    if not several:  # a fact read in document order when both sentences come from one passage
        first = chosen[0].passage
        chosen.sort(key=lambda s: (s.passage != first, s.passage, s.position))
    return _complete_lead_ins(table, chosen)


def _complete_lead_ins(table: CandidateTable, chosen: list[SentenceRef]) -> list[SentenceRef]:
    """A sentence ending in a colon says nothing by itself: quote the items it introduces after it."""
    complete: list[SentenceRef] = []
    for ref in chosen:
        if ref in complete:
            continue
        complete.append(ref)
        if not ref.text.rstrip().endswith(":"):
            continue
        following = [s for s in table.evidence.sentences[ref.passage] if s.position > ref.position]
        for item in following[:LEAD_IN_ITEMS]:
            if item.text.rstrip().endswith("?") or is_heading(item.text):
                break
            if item not in complete:
                complete.append(item)
    return complete


def _next_statement(table: CandidateTable, sentence: SentenceRef) -> SentenceRef | None:
    """The candidate right after ``sentence`` in its passage, if there is one."""
    for ref in table.refs:
        if ref.passage == sentence.passage and ref.position == sentence.position + 1:
            return ref
    return None


def focus_span(kind: AnswerType, sentence: SentenceRef, asked: str) -> tuple[int, int] | None:
    """Where in ``sentence`` the asked-for number, date or name is (source offsets), if it is one."""
    low = sentence.text.lower()
    if kind in (AnswerType.PERSON, AnswerType.PLACE):
        known = proper_names(" " + asked) | set(asked.lower().split())
        found = [(low.find(name), name) for name in proper_names(sentence.text) - known]
        found = sorted((at, name) for at, name in found if at >= 0)
        return (sentence.start + found[0][0], sentence.start + found[0][0] + len(found[0][1])) if found else None
    pattern = {AnswerType.NUMBER: NUMBER, AnswerType.DATE: YEAR_OR_DATE}.get(kind)
    if pattern is None:
        return None
    asked_items = {m.lower() for m in pattern.findall(asked)}
    for match in pattern.finditer(sentence.text):
        if match.group().lower() not in asked_items:
            return sentence.start + match.start(), sentence.start + match.end()
    return None


class Citations:
    """Numbers passages in order of first use and collects the sentences each one supports."""

    def __init__(self) -> None:
        self._by_id: dict[str, Citation] = {}

    def cite(self, passage: Passage, highlights: list[tuple[int, int]], focus: tuple[int, int] | None = None) -> str:
        """The ``[n]`` marker for ``passage``, recording the spans it supports."""
        citation = self._by_id.get(passage.id)
        if citation is None:
            citation = Citation(
                n=len(self._by_id) + 1, source=passage.source, title=passage.title, text=passage.text,
                start=passage.start, end=passage.end, chunk_id=passage.id,
                location=str(passage.metadata.get("location", "")),
            )  # fmt: skip
            self._by_id[passage.id] = citation
        for span in highlights:
            if span not in citation.highlights:
                citation.highlights.append(span)
        if focus is not None and focus not in citation.focus:
            citation.focus.append(focus)
        return f"[{citation.n}]"

    def all(self) -> list[Citation]:
        """The citations in number order."""
        return list(self._by_id.values())
