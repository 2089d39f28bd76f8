"""The answer a user gets: text with [n] markers, the cited passages, and how it was produced."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Citation:
    """A numbered passage an answer cites.

    Attributes:
        n: The number used in the answer's ``[n]`` markers.
        source: Source id (path relative to the sources folder).
        title: Title of the source.
        text: The cited passage, verbatim.
        start: Offset of the passage in the source text.
        end: Offset one past the passage's end.
        chunk_id: The passage's stable id ``<source-id>:<n>``.
        highlights: Spans (same coordinates) of the sentences that support the answer.
        focus: Spans of the asked-for number, date or name inside those sentences.
        location: Where the passage is in its document, for people: "page 3" (PDF) or the heading
            of its section; empty when the loader knows neither.

    """

    n: int
    source: str
    title: str
    text: str
    start: int
    end: int
    chunk_id: str = ""
    highlights: list[tuple[int, int]] = field(default_factory=list)
    focus: list[tuple[int, int]] = field(default_factory=list)
    location: str = ""

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "n": self.n,
            "source": self.source,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "chunk_id": self.chunk_id,
            "highlights": [list(h) for h in self.highlights],
            "focus": [list(f) for f in self.focus],
            "location": self.location,
        }


@dataclass(slots=True)
class Answer:
    """An answer with its citations.

    Attributes:
        answer: Plain sentences, each followed by its ``[n]`` citation markers.
        refused: True when the sources do not contain the answer.
        citations: The passages cited, numbered from 1 in order of first use.
        timings_ms: Milliseconds spent per stage.
        backend: Which backend wrote the answer.
        confidence: The answerer's evidence score, 0..1.
        retrieved: Ids of every passage retrieved (citations are always among them).
        notes: What verification removed, or why the answer was refused.

    """

    answer: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    backend: str = "extractive"
    confidence: float = 0.0
    retrieved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The stable JSON shape used by the CLI, the HTTP API and evaluation scripts."""
        return {
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "backend": self.backend,
            "confidence": round(self.confidence, 4),
            "notes": list(self.notes),
        }
