"""Thumbs up/down feedback with an optional comment, appended durably to ``data/feedback.jsonl``, and its export.

The log is append-only. A rating gets an ``id``; a comment added later is a new line with the same ``id``,
and :meth:`FeedbackLog.entries` keeps the newest line of each id, so nothing is ever rewritten in place.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
import uuid
from pathlib import Path

#: Largest stored field, in characters (citations: how many; source: characters of a source id).
LIMITS = {"question": 4000, "answer": 8000, "comment": 2000, "citations": 20, "source": 500}
#: Columns of the CSV export.
CSV_FIELDS = ("time", "id", "rating", "question", "answer", "comment", "sources", "citations")
# A spreadsheet runs a cell that starts with one of these as a formula; the export quotes it as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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

    def record(
        self, *, rating: str, question: str, answer: str, citations: list[dict], comment: str = "",
        entry_id: str | None = None,
    ) -> dict:  # fmt: skip
        """Store one rating (``"up"`` or ``"down"``) with the question, answer and citations it judges.

        Every field is bounded (see :data:`LIMITS`), so one line stays small whatever a client sends.

        Args:
            rating: ``"up"`` or ``"down"``.
            question: The question asked.
            answer: The answer rated.
            citations: The answer's citations (number, source id, offsets are kept).
            comment: Optional free text.
            entry_id: The id of an earlier rating this line supersedes (a comment added to it, a changed
                thumb); a new id when omitted.

        Returns:
            The stored entry, with its ``id``.

        """
        if rating not in ("up", "down"):
            raise ValueError("rating must be 'up' or 'down'")
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "id": _text(entry_id, 64) or uuid.uuid4().hex,
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

    def entries(self) -> list[dict]:
        """The stored feedback, oldest first, one entry per id (its newest line); unreadable lines are skipped.

        Lines written before ids existed each count as their own entry.
        """
        if not self.path.exists():
            return []
        latest: dict[str, dict] = {}
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash, or edited by hand
                if isinstance(entry, dict) and entry.get("rating") in ("up", "down"):
                    key = entry["id"] if isinstance(entry.get("id"), str) else f"line-{number}"
                    first = latest.get(key)  # a later line keeps the first one's place and time
                    latest[key] = {**entry, "time": first["time"]} if first else entry
        return list(latest.values())


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_feedback(entries: list[dict], fmt: str) -> str:
    """Feedback as ``"jsonl"`` (one entry per line) or ``"csv"`` (a header and one row per entry).

    CSV has the columns of :data:`CSV_FIELDS`: ``sources`` lists the cited source ids, ``citations`` holds
    the citations as JSON; a cell that a spreadsheet would run as a formula starts with ``'``.

    Raises:
        ValueError: ``fmt`` is neither ``"jsonl"`` nor ``"csv"``.

    """
    if fmt == "jsonl":
        return "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}; use csv or jsonl")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for entry in entries:
        citations = entry.get("citations") if isinstance(entry.get("citations"), list) else []
        sources = "; ".join(dict.fromkeys(c.get("source", "") for c in citations if isinstance(c, dict)))
        row = {**entry, "sources": sources, "citations": citations}
        writer.writerow([_cell(row.get(field, "")) for field in CSV_FIELDS])
    return out.getvalue()
