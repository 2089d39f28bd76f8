"""The answer path: question analysis → evidence → learned scoring → selection → composition → citations.

Scoring is two-stage: a logistic model on cheap features shortlists the candidate sentences, the
cross-encoder reads the shortlist, and a second logistic model ranks on both.

One retrieval per question serves both backends. The extractive backend quotes the sentences the
learned sentence model ranks highest; a generative backend writes from the same passages and its
verified sentences stand on their own. Either way the learned answerability model decides whether the
sources answer at all, at a threshold chosen on a calibration split.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from assistant.answer.compose import Citations, focus_span, select
from assistant.answer.evidence import Evidence, SentenceRef, gather
from assistant.answer.features import CandidateTable
from assistant.answer.question import Question, analyse, is_english
from assistant.answer.scorer import AnswerModels
from assistant.answer.types import Answer
from assistant.embeddings import SentenceEmbedder
from assistant.prompts import not_english_text, refusal_text
from assistant.retrieval import HybridRetriever
from assistant.store import PassageStore

if TYPE_CHECKING:  # the generative path (LangChain's parsers and tracers) is imported only when configured
    from assistant.answer.generative import GenerativeAnswerer


@dataclass(slots=True)
class Judgement:
    """One (sub-)question weighed against its evidence."""

    question: Question
    evidence: Evidence
    table: CandidateTable
    probabilities: np.ndarray
    answerable: float
    chosen: list[SentenceRef] = field(default_factory=list)


class _Timer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - since) * 1000
        return now


class AnswerPipeline:
    """Answers one question from a retriever's evidence with the learned models.

    Args:
        embedder: Embeds questions (sentence vectors come from the store).
        store: Where the sentences of retrieved passages are read from.
        models: The learned sentence and answerability models.
        generator: A generative backend, or ``None`` for extractive answers.
        backend: The backend's name, reported with each answer.

    """

    def __init__(
        self, embedder: SentenceEmbedder, store: PassageStore, models: AnswerModels,
        generator: GenerativeAnswerer | None = None, backend: str = "extractive",
    ) -> None:  # fmt: skip
        self.embedder = embedder
        self.store = store
        self.models = models
        self.generator = generator
        self.backend = backend

    def judge(
        self, question: Question, retriever: HybridRetriever, known_term: Callable[[str], bool], timer: _Timer
    ) -> Judgement:
        """Retrieve, score every candidate sentence and the question's answerability, and select."""
        t = time.perf_counter()
        q_vec = self.embedder.encode_cached([question.search_text])[0]
        t = timer.add("embed", t)
        evidence = gather(retriever, self.store, question.search_text, q_vec)
        t = timer.add("retrieve", t)
        table = CandidateTable(question, evidence, q_vec)
        probabilities = np.zeros(0)
        if table.refs:
            shortlist = table.shortlist(self.models.shortlist.probability(table.matrix), self.models.cross_candidates)
            t = timer.add("answer", t)
            reranker = self.models.reranker
            logits = reranker.score(question.search_text, table.reader_texts(shortlist, labelled=reranker.labelled))
            t = timer.add("rerank", t)
            table.add_cross(shortlist, logits)
            probabilities = self.models.sentence.probability(table.matrix)
        answerable = float(self.models.answerable.probability(table.question_row(probabilities, known_term))[0])
        judgement = Judgement(question, evidence, table, probabilities, answerable if table.refs else 0.0)
        if judgement.answerable >= self.models.threshold:
            judgement.chosen = select(table, probabilities, self.models)
        timer.add("answer", t)
        return judgement

    def answer(
        self, text: str, history: list[dict[str, str]], retriever: HybridRetriever, known_term: Callable[[str], bool]
    ) -> Answer:
        """Answer ``text`` (already validated) in the light of ``history``."""
        if not is_english(text):
            return Answer(
                not_english_text(), refused=True, backend=self.backend, notes=["the question is not in English"]
            )
        timer = _Timer()
        if self.generator is not None:
            answer = self._generative(text, history, retriever, known_term, timer)
        else:
            parsed = analyse(text, history)
            answer = self._extractive([self.judge(p, retriever, known_term, timer) for p in parsed.parts])
        answer.timings_ms = {**timer.ms, **answer.timings_ms}
        return answer

    def _extractive(self, judgements: list[Judgement], backend: str | None = None) -> Answer:
        retrieved = list(dict.fromkeys(p.id for j in judgements for p in j.evidence.passages))
        confidence = min(j.answerable for j in judgements)
        notes = []
        if len(judgements) > 1:
            notes = [f"not in the sources: {j.question.text}" for j in judgements if not j.chosen]
        citations = Citations()
        parts: list[str] = []
        seen: set[str] = set()
        for j in judgements:
            asked = f"{j.question.text} {j.question.context_text}"
            for sentence in j.chosen:
                if sentence.text in seen:
                    continue
                seen.add(sentence.text)
                passage = j.evidence.passages[sentence.passage]
                focus = focus_span(j.question.kind, sentence, asked)
                parts.append(f"{sentence.text} {citations.cite(passage, [(sentence.start, sentence.end)], focus)}")
        backend = backend or self.backend
        if not parts:
            return Answer(refusal_text(), refused=True, confidence=confidence, retrieved=retrieved, notes=notes,
                          backend=backend)  # fmt: skip
        return Answer(" ".join(parts), refused=False, citations=citations.all(), confidence=confidence,
                      retrieved=retrieved, notes=notes, backend=backend)  # fmt: skip

    def _generative(
        self, text: str, history: list[dict[str, str]], retriever: HybridRetriever,
        known_term: Callable[[str], bool], timer: _Timer,
    ) -> Answer:  # fmt: skip
        t = time.perf_counter()
        standalone = self.generator.condense(text, history)
        timer.add("condense", t)
        judgement = self.judge(analyse(standalone, []), retriever, known_term, timer)
        passages = judgement.evidence.passages
        t = time.perf_counter()
        draft = self.generator.draft(standalone, passages)
        timer.add("generate", t)
        verification = draft.verification
        if verification is not None and verification.sentences:
            # Verified sentences stand on their own: the extractive score has no say over them.
            citations = Citations()
            parts = []
            for sentence in verification.sentences:
                marks = "".join(
                    citations.cite(passages[i], sentence.support if i == sentence.passages[0] else [])
                    for i in sentence.passages
                )
                parts.append(f"{sentence.text} {marks}")
            return Answer(" ".join(parts), refused=False, citations=citations.all(), backend=self.backend,
                          confidence=judgement.answerable, retrieved=[p.id for p in passages],
                          notes=verification.notes)  # fmt: skip
        if draft.refused_by_model:
            # The model read the passages and found no answer: that is the answer, not a cue to guess.
            why = "the model found no answer in the passages"
            return Answer(refusal_text(), refused=True, backend=self.backend, confidence=judgement.answerable,
                          retrieved=[p.id for p in passages], notes=[why])  # fmt: skip
        # The model answered but nothing it wrote survived verification: offer the extractive answer,
        # labelled, only if it passes the same answerability threshold (else _extractive refuses).
        label = f"extractive (fallback: verification removed every sentence written by {self.backend})"
        fallback = self._extractive([judgement], backend=label)
        fallback.notes = [*verification.notes, *fallback.notes] if verification else fallback.notes
        return fallback
