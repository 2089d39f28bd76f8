"""Thumbs up/down feedback, appended durably to ``data/feedback.jsonl``."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

#: Largest stored field, in characters (citations: how many; source: characters of a source id).
LIMITS = {"question": 4000, "answer": 8000, "comment": 2000, "citations": 20, "source": 500}


def _text(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else ""
    return text[:limit].encode("utf-8", "replace").decode("utf-8")


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _citation(citation: dict) -> dict:
    return {
        "n": _number(citation.get("n")),
        "source": _text(citation.get("source"), LIMITS["source"]),
        "start": _number(citation.get("start")),
        "end": _number(citation.get("end")),
    }


class FeedbackLog:
    """Append-only JSONL log; each line is flushed and fsynced before the call returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, *, rating: str, question: str, answer: str, citations: list[dict], comment: str = "") -> dict:
        """Store one rating (``"up"`` or ``"down"``) with the question, answer and citations it judges.

        Every field is bounded (see :data:`LIMITS`), so one line stays small whatever a client sends.
        """
        if rating not in ("up", "down"):
            raise ValueError("rating must be 'up' or 'down'")
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "rating": rating,
            "question": _text(question, LIMITS["question"]),
            "answer": _text(answer, LIMITS["answer"]),
            "citations": [_citation(c) for c in citations[: LIMITS["citations"]] if isinstance(c, dict)],
            "comment": _text(comment, LIMITS["comment"]),
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        return entry
