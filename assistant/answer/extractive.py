"""The offline, deterministic answerer: pick the source sentences that answer, or refuse.

A candidate is one sentence, or two neighbouring sentences of a passage (an answer often follows the
sentence that names the topic). Each candidate is scored on two kinds of evidence:

* **semantic**: cosine similarity of the question to the candidate's best sentence (bundled embedder);
* **lexical coverage**: the share of the question's terms, weighted by IDF, that the candidate contains.
  A term the corpus never uses weighs the most, so a question about something the sources never
  mention cannot reach a high score by matching only its common words.

A candidate must also carry the *kind* of answer asked for (a number for "how many", a date for "when",
a name for "who", a place for "where") that is not already in the question, and say something beyond
the question's own words. The best candidate below ``min_confidence`` means a refusal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.answer.question import AnswerType, Question
from assistant.config import AnswerSettings
from assistant.text import NUMBER, YEAR_OR_DATE, is_heading, proper_names, terms

SEMANTIC_WEIGHT = 0.5
PAIR_PENALTY = 0.03
CONTEXT_SHARE = 0.35
TYPE_MISMATCH_FACTOR = 0.5
SECOND_SPAN_RATIO = 0.85


@dataclass(slots=True)
class SentenceRef:
    """A sentence of a retrieved passage."""

    passage: int
    text: str
    start: int
    end: int
    vector: np.ndarray
    terms: frozenset[str]


@dataclass(slots=True)
class Candidate:
    """One or two consecutive sentences proposed as an answer."""

    sentences: list[SentenceRef]
    score: float
    semantic: float
    coverage: float
    type_ok: bool

    @property
    def key(self) -> tuple[int, int]:
        """Position of the first sentence, used to keep candidates apart."""
        return (self.sentences[0].passage, self.sentences[0].start)


@dataclass(slots=True)
class Selection:
    """The sentences chosen to answer, or none, with the evidence score."""

    sentences: list[SentenceRef]
    confidence: float


def _type_evidence(kind: AnswerType, text: str, question_text: str) -> bool:
    if kind is AnswerType.NUMBER:
        asked = set(NUMBER.findall(question_text.lower()))
        return any(m.lower() not in asked for m in NUMBER.findall(text)) or bool(set(terms(text)) & {"half", "quarter"})
    if kind is AnswerType.DATE:
        asked = {m.lower() for m in YEAR_OR_DATE.findall(question_text)}
        return any(m.lower() not in asked for m in YEAR_OR_DATE.findall(text))
    if kind in (AnswerType.PERSON, AnswerType.PLACE):
        return bool(proper_names(text) - proper_names(" " + question_text) - set(question_text.lower().split()))
    return True


class ExtractiveAnswerer:
    """Selects answer sentences from retrieved passages by similarity, term coverage and answer type."""

    def __init__(self, settings: AnswerSettings) -> None:
        self.settings = settings

    @staticmethod
    def _local_idf(sentences: list[list[SentenceRef]]) -> Callable[[str], float]:
        """IDF over the retrieved sentences, not the whole corpus.

        What tells an answer apart is how rare a term is *among the candidates*: a topic word found in
        every retrieved sentence says little, a question word found in none means the answer is missing.
        Measured locally, the weights do not drift as unrelated documents are added to the corpus.
        """
        unique = {s.text: s.terms for group in sentences for s in group}
        df: Counter[str] = Counter()
        for words in unique.values():
            df.update(words)
        n = len(unique)
        return lambda term: math.log(1 + (n + 1) / (df.get(term, 0) + 0.5))

    @staticmethod
    def _coverage(weights: dict[str, float], span_terms: frozenset[str]) -> float:
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in span_terms) / total if total else 0.0

    def _score(
        self, sents: list[SentenceRef], question: Question, weights: tuple[dict, dict], q_vec: np.ndarray
    ) -> Candidate:
        own, context = weights
        span_terms = frozenset().union(*(s.terms for s in sents))
        coverage = self._coverage(own, span_terms)
        if context:  # a follow-up: its own words matter most, the conversation's words help
            coverage = (1 - CONTEXT_SHARE) * coverage + CONTEXT_SHARE * self._coverage(context, span_terms)
        # Between the best sentence and the average: an unrelated neighbour must not ride along on the
        # best one's similarity, but a neighbour that completes the answer need not match on its own.
        sims = [float(np.dot(q_vec, s.vector)) for s in sents]
        semantic = (max(sims) + sum(sims) / len(sims)) / 2
        text = " ".join(s.text for s in sents)
        novel = bool(span_terms - set(question.terms) - set(question.context_terms))
        type_ok = novel and _type_evidence(question.kind, text, f"{question.text} {question.context_text}")
        score = SEMANTIC_WEIGHT * max(semantic, 0.0) + (1 - SEMANTIC_WEIGHT) * coverage
        if len(sents) > 1 and coverage <= self._coverage(own, sents[0].terms) + 1e-9:
            score -= PAIR_PENALTY  # a second sentence that adds none of the question's terms only adds length
        if not type_ok:
            score *= TYPE_MISMATCH_FACTOR
        return Candidate(sents, score, semantic, coverage, type_ok)

    def candidates(self, question: Question, sentences: list[list[SentenceRef]], q_vec: np.ndarray) -> list[Candidate]:
        """Every single sentence and neighbouring pair of every passage, scored, best first."""
        idf = self._local_idf(sentences)
        weights = ({t: idf(t) for t in question.terms}, {t: idf(t) for t in question.context_terms})
        out: list[Candidate] = []
        for passage_sentences in sentences:
            usable = [s for s in passage_sentences if not is_heading(s.text)]
            for i, sentence in enumerate(usable):
                out.append(self._score([sentence], question, weights, q_vec))
                if i + 1 < len(usable):
                    out.append(self._score([sentence, usable[i + 1]], question, weights, q_vec))
        out.sort(key=lambda c: (-c.score, c.key))
        return out

    def select(self, question: Question, sentences: list[list[SentenceRef]], q_vec: np.ndarray) -> Selection:
        """Choose the answer sentences for one (simple) question, or none when the evidence is too weak."""
        ranked = self.candidates(question, sentences, q_vec)
        if not ranked or not ranked[0].type_ok or ranked[0].score < self.settings.min_confidence:
            return Selection([], ranked[0].score if ranked else 0.0)
        best = ranked[0]
        chosen = list(best.sentences)
        if question.wants_several:
            taken = {s.text for s in chosen}
            for other in ranked[1:]:
                if other.score < max(self.settings.min_confidence, SECOND_SPAN_RATIO * best.score):
                    break
                if not other.type_ok or any(s.text in taken for s in other.sentences):
                    continue
                if len(chosen) + len(other.sentences) > self.settings.max_sentences:
                    continue
                chosen.extend(other.sentences)
                break
        return Selection(chosen, best.score)
