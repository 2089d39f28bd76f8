"""Features the learned answer models read: one row per candidate sentence, one row per question.

Every feature is relative to the question and the retrieved evidence, never to a corpus: similarities,
shares of the question's terms (weighted by how rare each is *among the retrieved sentences*, so the
weights do not drift as documents are added), whether the sentence carries the kind of answer asked for,
and where it sits. The models that weigh them are trained by ``scripts/train_answerer.py``; this module
is shared by training and answering, so both see exactly the same numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np

from assistant.answer.evidence import Evidence, SentenceRef
from assistant.answer.question import AnswerType, Question, QuestionForm, asks_reason, asks_time_span
from assistant.text import CAUSAL, CONDITION, NUMBER, TIME_SPAN, YEAR_OR_DATE, is_heading, proper_names

_KINDS = (AnswerType.NUMBER, AnswerType.DATE, AnswerType.PERSON, AnswerType.PLACE)
_FORMS = (QuestionForm.YES_NO, QuestionForm.EXPLAIN, QuestionForm.LIST)

BASE_FEATURES = (
    "cos",
    "cos_gap",
    "cos_neighbour",
    "cos_heading",
    "cov_heading",
    "cov",
    "cov_gap",
    "cov_window",
    "cov_passage",
    "cov_context",
    "salient",
    "salient_window",
    "rarest_term",
    "passage_rank",
    "passage_dense",
    "passage_lexical",
    "novel",
    "length",
    "heading",
    "first",
    "type_number",
    "type_date",
    "type_person",
    "type_place",
    "type_reason",
    "type_time_span",
    "yes_no_condition",
    "lead_in",
    "table_row",
    "has_number",
    "has_name",
    *(f"kind_{k}" for k in _KINDS),
    *(f"form_{f}" for f in _FORMS),
    "follow_up",
)

#: The most candidates the cross-encoder reads (the ones the base-feature model ranks highest): training
#: scores this many; the shipped models read the number chosen on the calibration split
#: (:attr:`assistant.answer.scorer.AnswerModels.cross_candidates`).
CROSS_CANDIDATES = 12
#: Features a candidate gets from the cross-encoder (see :meth:`CandidateTable.add_cross`).
CROSS_FEATURES = ("cross", "cross_gap", "cross_scored")
SENTENCE_FEATURES = (*BASE_FEATURES, *CROSS_FEATURES)

_TOP_ROW = (
    "cos",
    "cov",
    "cov_window",
    "cov_heading",
    "salient",
    "salient_window",
    "rarest_term",
    "novel",
    "type_number",
    "type_date",
    "type_person",
    "type_place",
    "type_reason",
    "type_time_span",
)

QUESTION_FEATURES = (
    "p1",
    "p2",
    "logit1",
    "p_gap",
    *(f"top_{name}" for name in _TOP_ROW),
    "top_missing",
    "cross_max",
    "cos_max",
    "cov_max",
    "cov_passage_max",
    "salient_max",
    "salient_anywhere",
    "has_salient",
    "unknown_terms",
    "dense_max",
    "lexical_max",
    "n_terms",
    *(f"kind_{k}" for k in _KINDS),
    *(f"form_{f}" for f in _FORMS),
    "follow_up",
)


def _local_idf(sentences: list[SentenceRef]) -> Callable[[str], float]:
    """IDF over the retrieved sentences: a topic word in every one says little, one in none says the most."""
    unique = {s.text: s.terms for s in sentences}
    df: Counter[str] = Counter()
    for words in unique.values():
        df.update(words)
    n = len(unique)
    return lambda term: math.log(1 + (n + 1) / (df.get(term, 0) + 0.5))


def _coverage(weights: dict[str, float], have: frozenset[str] | set[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in have) / total if total else 0.0


def _new_items(pattern, text: str, asked: set[str]) -> bool:
    return any(m.lower() not in asked for m in pattern.findall(text))


#: How far back (in sentences) a heading or a FAQ question still labels the sentence below it.
_HEADING_REACH = 3


def _is_candidate(sentence: SentenceRef) -> bool:
    return not sentence.text.rstrip().endswith("?")


def _is_label(sentence: SentenceRef) -> bool:
    """A heading or a question in the text: it names what follows, it does not answer anything."""
    return is_heading(sentence.text) or sentence.text.rstrip().endswith("?")


class CandidateTable:
    """Candidate sentences of one question with their feature rows (``matrix[i]`` describes ``refs[i]``).

    Questions in the text (a FAQ's own questions) are not candidates: they say nothing. They and headings
    lend their match with the question to the sentences below them, which is where a FAQ's answer is.
    """

    def __init__(self, question: Question, evidence: Evidence, q_vec: np.ndarray) -> None:
        self.groups = [[s for s in group if s.text.strip()] for group in evidence.sentences]
        self.refs: list[SentenceRef] = [s for group in self.groups for s in group if _is_candidate(s)]
        self.question = question
        self.evidence = evidence
        self.own_weights: dict[str, float] = {}
        self.matrix = self._features(self.groups, q_vec) if self.refs else np.zeros((0, len(BASE_FEATURES)))

    def _features(self, groups: list[list[SentenceRef]], q_vec: np.ndarray) -> np.ndarray:
        q = self.question
        idf = _local_idf(self.refs)
        own = {t: idf(t) for t in q.terms}
        self.own_weights = own
        context = {t: idf(t) for t in q.context_terms}
        salient = {t: 1.0 for t in q.salient}
        rarest = max(own, key=own.get) if own else None
        asked_text = f"{q.text} {q.context_text}"
        asked_numbers = {m.lower() for m in NUMBER.findall(asked_text)}
        asked_dates = {m.lower() for m in YEAR_OR_DATE.findall(asked_text)}
        asked_names = proper_names(" " + asked_text) | set(asked_text.lower().split())
        asked_terms = set(q.terms) | set(q.context_terms)
        lexical_max = max((p.lexical for p in self.evidence.passages), default=0.0) or 1.0
        question_level = [float(q.kind is k) for k in _KINDS] + [float(q.form is f) for f in _FORMS]
        question_level.append(float(bool(q.context_terms)))
        why, how_long, yes_no = asks_reason(q.text), asks_time_span(q.text), q.form is QuestionForm.YES_NO

        rows = []
        for group in groups:
            if not group:
                continue
            passage = self.evidence.passages[group[0].passage]
            passage_terms = frozenset().union(*(s.terms for s in group))
            sims = [float(np.dot(q_vec, s.vector)) for s in group]
            cov_passage = _coverage(own, passage_terms)
            label = None  # the nearest heading or FAQ question above, within reach
            for i, s in enumerate(group):
                if label is not None and i - label > _HEADING_REACH:
                    label = None
                if _is_label(s):
                    label = i
                if not _is_candidate(s):
                    continue
                above = label if label is not None and label < i else None
                window = s.terms.union(*(g.terms for g in group[max(0, i - 1) : i + 2]))
                neighbours = sims[max(0, i - 1) : i] + sims[i + 1 : i + 2]
                has_number = _new_items(NUMBER, s.text, asked_numbers)
                has_date = _new_items(YEAR_OR_DATE, s.text, asked_dates)
                has_name = bool(proper_names(s.text) - asked_names)
                n_terms = len(s.terms)
                rows.append(
                    [
                        sims[i],
                        0.0,  # cos_gap, filled below
                        max(neighbours, default=0.0),
                        sims[above] if above is not None else 0.0,
                        _coverage(own, s.terms | group[above].terms) if above is not None else 0.0,
                        _coverage(own, s.terms),
                        0.0,  # cov_gap, filled below
                        _coverage(own, window),
                        cov_passage,
                        _coverage(context, s.terms) if context else 0.0,
                        _coverage(salient, s.terms) if salient else 1.0,
                        _coverage(salient, window) if salient else 1.0,
                        float(rarest in s.terms) if rarest else 0.0,
                        1.0 / (1 + s.passage),
                        passage.dense,
                        passage.lexical / lexical_max,
                        len(s.terms - asked_terms) / n_terms if n_terms else 0.0,
                        math.log1p(n_terms),
                        float(is_heading(s.text)),
                        float(s.position == 0),
                        float(q.kind is AnswerType.NUMBER and has_number),
                        float(q.kind is AnswerType.DATE and has_date),
                        float(q.kind is AnswerType.PERSON and has_name),
                        float(q.kind is AnswerType.PLACE and has_name),
                        float(why and bool(CAUSAL.search(s.text))),
                        float(how_long and bool(TIME_SPAN.search(s.text))),
                        float(yes_no and bool(CONDITION.search(s.text))),
                        float(s.text.rstrip().endswith(":")),
                        float(s.text.count("|") >= 2),
                        float(has_number),
                        float(has_name),
                        *question_level,
                    ]
                )
        matrix = np.asarray(rows, dtype=np.float64)
        cos, cov = BASE_FEATURES.index("cos"), BASE_FEATURES.index("cov")
        matrix[:, cos + 1] = matrix[:, cos] - matrix[:, cos].max()
        matrix[:, cov + 1] = matrix[:, cov] - matrix[:, cov].max()
        return matrix

    def reader_texts(self, indices: list[int], *, labelled: bool) -> list[str]:
        """What the cross-encoder reads for these candidates: the sentences, ``labelled`` or alone.

        A labelled sentence comes after the heading or FAQ question above it: a FAQ's answer ("Yes, up to 3
        days a week.") or a table row says little without the question or heading it sits under, which the
        base features read (``cos_heading``) and a bare sentence lacks.
        """
        if not labelled:
            return [self.refs[i].text for i in indices]
        texts = {}
        for group in self.groups:
            label = None
            for s in group:
                if label is not None and s.position - label.position > _HEADING_REACH:
                    label = None
                above = label
                if _is_label(s):
                    label = s
                if above is not None and _is_candidate(s):
                    text = above.text.strip().lstrip("#*").strip()
                    texts[id(s)] = f"{text}{' ' if text.endswith('?') else ': '}{s.text}"
        return [texts.get(id(self.refs[i]), self.refs[i].text) for i in indices]

    def shortlist(self, base_probabilities: np.ndarray, count: int = CROSS_CANDIDATES) -> list[int]:
        """The candidates the cross-encoder reads: the ``count`` best by the base-feature model."""
        return [int(i) for i in np.argsort(-base_probabilities, kind="stable")[:count]]

    def add_cross(self, shortlist: list[int], logits: np.ndarray) -> None:
        """Append the cross-encoder's columns; candidates it did not read rank just below all it did."""
        cross = np.full(len(self.refs), float(np.min(logits)) - 1.0 if len(logits) else 0.0)
        cross[shortlist] = np.clip(logits, -12, 12)
        scored = np.zeros(len(self.refs))
        scored[shortlist] = 1.0
        columns = np.column_stack([cross, cross - cross.max(), scored])
        self.matrix = np.hstack([self.matrix[:, : len(BASE_FEATURES)], columns.reshape(len(self.refs), 3)])

    def question_row(self, probabilities: np.ndarray, known_term: Callable[[str], bool]) -> np.ndarray:
        """Question-level features for the answerability model, given each candidate's probability.

        Args:
            probabilities: The sentence model's probability for each candidate, in ``refs`` order.
            known_term: Whether the corpus uses a term at all (a question about something the sources
                never mention has terms no document uses).

        """
        q = self.question
        col = {name: i for i, name in enumerate(SENTENCE_FEATURES)}
        m = self.matrix
        top = np.sort(probabilities)[::-1] if len(probabilities) else np.zeros(1)
        p1 = float(top[0])
        p2 = float(top[1]) if len(top) > 1 else 0.0
        all_terms = frozenset().union(*(s.terms for s in self.refs)) if self.refs else frozenset()
        salient_anywhere = (
            sum(t in all_terms for t in q.salient) / len(q.salient) if q.salient else 1.0
        )  # fmt: skip
        unknown = sum(not known_term(t) for t in q.terms) / len(q.terms) if q.terms else 0.0
        clipped = min(max(p1, 1e-6), 1 - 1e-6)
        empty = not len(m)
        best = int(np.argmax(probabilities)) if len(probabilities) else -1
        cross_max = 0.0 if empty else float(m[:, col["cross"]].max())
        top_row = [0.0 if empty else float(m[best, col[name]]) for name in _TOP_ROW]
        missing = 0.0
        if not empty and self.own_weights:
            ref = self.refs[best]
            group = self.evidence.sentences[ref.passage]
            window = frozenset().union(*(g.terms for g in group if abs(g.position - ref.position) <= 1))
            heaviest = max(self.own_weights.values())
            missing = max((w for t, w in self.own_weights.items() if t not in window), default=0.0) / heaviest
        row = [
            p1,
            p2,
            math.log(clipped / (1 - clipped)),
            p1 - p2,
            *top_row,
            missing,
            cross_max,
            0.0 if empty else float(m[:, col["cos"]].max()),
            0.0 if empty else float(m[:, col["cov"]].max()),
            0.0 if empty else float(m[:, col["cov_passage"]].max()),
            0.0 if empty else float(m[:, col["salient"]].max()),
            salient_anywhere,
            float(bool(q.salient)),
            unknown,
            max((p.dense for p in self.evidence.passages), default=0.0),
            math.log1p(max((p.lexical for p in self.evidence.passages), default=0.0)),
            math.log1p(len(q.terms)),
            *(float(q.kind is k) for k in _KINDS),
            *(float(q.form is f) for f in _FORMS),
            float(bool(q.context_terms)),
        ]
        return np.asarray(row, dtype=np.float64)
