"""Evidence for one question: the retrieved passages and their sentences, with stored vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.retrieval import HybridRetriever, Passage
from assistant.store import PassageStore
from assistant.text import terms


@dataclass(slots=True)
class SentenceRef:
    """A sentence of a retrieved passage.

    Attributes:
        passage: Index of its passage in :attr:`Evidence.passages`.
        position: Index of the sentence within that passage.
        text: The sentence, verbatim.
        start: Offset of the sentence in the source text.
        end: Offset one past its end.
        vector: Its unit vector (stored at ingest).
        terms: Its stemmed content terms.

    """

    passage: int
    position: int
    text: str
    start: int
    end: int
    vector: np.ndarray
    terms: frozenset[str]


@dataclass(slots=True)
class Evidence:
    """Retrieved passages (best first) and, per passage, its sentences in reading order."""

    passages: list[Passage]
    sentences: list[list[SentenceRef]]


def gather(retriever: HybridRetriever, store: PassageStore, search_text: str, q_vec: np.ndarray) -> Evidence:
    """Retrieve passages for ``search_text`` and load their sentences (one primary-key lookup)."""
    passages = retriever.search(search_text, query_vector=q_vec)
    by_passage = store.sentences_of({p.id: p.source_hash for p in passages})
    groups = []
    for i, passage in enumerate(passages):
        refs = []
        for position, (start, end, vec) in enumerate(by_passage.get(passage.id, [])):
            text = passage.text[start - passage.start : end - passage.start]
            refs.append(SentenceRef(i, position, text, start, end, vec, frozenset(terms(text))))
        groups.append(refs)
    return Evidence(passages, groups)
