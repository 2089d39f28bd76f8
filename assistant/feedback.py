"""Thumbs up/down feedback, appended durably to ``data/feedback.jsonl``."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


class FeedbackLog:
    """Append-only JSONL log; each line is flushed and fsynced before the call returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, *, rating: str, question: str, answer: str, citations: list[dict], comment: str = "") -> dict:
        """Store one rating (``"up"`` or ``"down"``) with the question, answer and citations it judges."""
        if rating not in ("up", "down"):
            raise ValueError("rating must be 'up' or 'down'")
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "rating": rating,
            "question": question[:4000],
            "answer": answer[:8000],
            "citations": [{k: c.get(k) for k in ("n", "source", "start", "end")} for c in citations][:20],
            "comment": comment[:2000],
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        return entry
