"""Verification of generated answers: every sentence must be backed by a retrieved passage it cites.

For each sentence of the model's output:

1. ``[n]`` markers that do not name a retrieved passage are dropped.
2. A sentence with no valid marker is attributed to the retrieved passage that supports it best, if any does.
3. Hard evidence — every number, date and proper name in the sentence — must appear in the cited passages.
4. Soft evidence — enough of the sentence's content terms in the cited passages, or a cited sentence
   semantically close to it (bundled embedder).

Sentences failing 3 or 4 are removed and reported. Text the passages do not contain (an invented figure,
a leaked instruction, a system prompt) cannot survive, because nothing retrieved supports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from assistant.embeddings import SentenceEmbedder
from assistant.retrieval import Passage
from assistant.text import NUMBER, YEAR_OR_DATE, normalize, proper_names, sentences, terms

MIN_TERM_SUPPORT = 0.6
MIN_SEMANTIC_SUPPORT = 0.62
_MARKER = re.compile(r"\s*\[(\d+)\]")
_MARKERS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+\])+)")


@dataclass(slots=True)
class VerifiedSentence:
    """A generated sentence that survived, with the passages (0-based) it cites."""

    text: str
    passages: list[int]
    support: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class Verification:
    """What survived and what was removed."""

    sentences: list[VerifiedSentence]
    notes: list[str]


def _hard_facts(sentence: str) -> set[str]:
    facts = {m.replace(",", "").lower() for m in NUMBER.findall(sentence) if any(ch.isdigit() for ch in m)}
    facts |= {m.lower() for m in YEAR_OR_DATE.findall(sentence)}
    facts |= {name for name in proper_names(sentence) if len(name) > 1}
    return facts


def _has_fact(fact: str, passage_text: str) -> bool:
    return fact in passage_text or fact.rstrip("%") in passage_text


class Verifier:
    """Checks generated sentences against the retrieved passages."""

    def __init__(self, embedder: SentenceEmbedder) -> None:
        self.embedder = embedder

    def _support(self, sentence: str, passages: list[Passage], cited: list[int]) -> tuple[bool, str, list[tuple]]:
        joined = normalize(" ".join(passages[i].text for i in cited)).lower().replace(",", "")
        missing = [f for f in _hard_facts(normalize(sentence)) if not _has_fact(f.replace(",", ""), joined)]
        if missing:
            return False, f"not in the cited passages: {', '.join(sorted(missing))}", []
        own = set(terms(sentence))
        cited_terms = set(terms(joined))
        term_support = len(own & cited_terms) / len(own) if own else 0.0
        spans = [s for i in cited for s in sentences(passages[i].text, offset=passages[i].start)]
        vectors = self.embedder.encode_cached([sentence, *[s.text for s in spans]])
        similarity = vectors[1:] @ vectors[0] if spans else np.zeros(0)
        best = int(np.argmax(similarity)) if len(similarity) else -1
        semantic = float(similarity[best]) if best >= 0 else 0.0
        if term_support < MIN_TERM_SUPPORT and semantic < MIN_SEMANTIC_SUPPORT:
            return False, f"unsupported (terms {term_support:.2f}, similarity {semantic:.2f})", []
        return True, "", [(spans[best].start, spans[best].end)] if best >= 0 else []

    def verify(self, output: str, passages: list[Passage]) -> Verification:
        """Keep the supported sentences of ``output`` with their valid citations."""
        kept: list[VerifiedSentence] = []
        notes: list[str] = []
        # "Sentence. [1] Next" -> "Sentence [1]. Next": markers belong to the sentence they follow.
        output = _MARKERS_AFTER_STOP.sub(lambda m: m.group(2) + m.group(1), output.strip())
        for span in sentences(output):
            markers = [int(n) for n in _MARKER.findall(span.text)]
            text = _MARKER.sub("", span.text).strip()
            if not terms(text):
                continue
            invalid = sorted({n for n in markers if not 1 <= n <= len(passages)})
            if invalid:
                notes.append(f"dropped citation(s) to passages that were not retrieved: {invalid}")
            cited = list(dict.fromkeys(n - 1 for n in markers if 1 <= n <= len(passages)))
            if not cited:
                candidates = [(i, self._support(text, passages, [i])) for i in range(len(passages))]
                cited = [i for i, (ok, _, _) in candidates if ok][:1]
                if not cited:
                    notes.append(f"removed a sentence no retrieved passage supports: {text[:120]!r}")
                    continue
            ok, reason, support = self._support(text, passages, cited)
            if not ok:
                notes.append(f"removed {text[:120]!r}: {reason}")
                continue
            kept.append(VerifiedSentence(text, cited, support))
        return Verification(kept, notes)
