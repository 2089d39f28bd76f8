"""Feedback: bounded fields, comments merged into their rating, CSV/JSONL export and the CLI that writes it."""

from __future__ import annotations

import csv
import io
import json

from assistant.cli import main
from assistant.feedback import CSV_FIELDS, LIMITS, FeedbackLog, export_feedback

CITATION = {"n": 1, "source": "leave-policy.md", "start": 10, "end": 90, "text": "ignored"}


def test_a_comment_is_merged_into_its_rating(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    first = log.record(rating="up", question="q1", answer="a1", citations=[CITATION])
    other = log.record(rating="down", question="q2", answer="a2", citations=[])
    log.record(rating="up", question="q1", answer="a1", citations=[CITATION], comment="spot on", entry_id=first["id"])
    entries = log.entries()
    assert [e["id"] for e in entries] == [first["id"], other["id"]]
    assert entries[0]["comment"] == "spot on" and entries[0]["time"] == first["time"]
    assert entries[0]["citations"] == [{"n": 1, "source": "leave-policy.md", "start": 10, "end": 90}]
    assert len((tmp_path / "feedback.jsonl").read_text().splitlines()) == 3  # appended, never rewritten


def test_comments_and_fields_are_bounded(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    entry = log.record(rating="down", question="q" * 10_000, answer="a", citations=[CITATION] * 50, comment="c" * 9999)
    assert len(entry["comment"]) == LIMITS["comment"] and len(entry["question"]) == LIMITS["question"]
    assert len(entry["citations"]) == LIMITS["citations"]


def test_unreadable_lines_and_old_lines_without_ids_are_handled(tmp_path):
    path = tmp_path / "feedback.jsonl"
    old = {"time": "2025-01-01T00:00:00Z", "rating": "up", "question": "q", "answer": "a", "citations": []}
    path.write_text(json.dumps(old) + "\n" + '{"rating": "up", "quest' + "\n" + json.dumps(old) + "\n[1, 2]\n")
    assert FeedbackLog(path).entries() == [old, old]


def test_export_as_csv_quotes_formulas_and_lists_sources(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    log.record(rating="down", question="=cmd|' /C calc'!A0", answer="+1, two", citations=[CITATION, CITATION],
               comment="-wrong\nsee page 2")  # fmt: skip
    rows = list(csv.reader(io.StringIO(export_feedback(log.entries(), "csv"))))
    assert rows[0] == list(CSV_FIELDS)
    row = dict(zip(CSV_FIELDS, rows[1], strict=True))
    assert row["question"] == "'=cmd|' /C calc'!A0" and row["answer"] == "'+1, two"
    assert row["comment"] == "'-wrong\nsee page 2" and row["sources"] == "leave-policy.md"
    assert json.loads(row["citations"])[0]["source"] == "leave-policy.md"


def test_export_as_jsonl_round_trips(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    log.record(rating="up", question="Wie viele Tage?", answer="25 Tage [1]", citations=[CITATION], comment="ok")
    lines = export_feedback(log.entries(), "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == log.entries()


def test_cli_exports_feedback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASSISTANT_PATHS__DATA_DIR", str(tmp_path))
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    log.record(rating="up", question="q", answer="a", citations=[CITATION], comment="useful")
    assert main(["feedback", "export", "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["comment"] == "useful"
    out = tmp_path / "feedback.csv"
    assert main(["feedback", "export", "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == ",".join(CSV_FIELDS)
    assert "exported 1 feedback entries" in capsys.readouterr().err


def test_cli_export_of_no_feedback_is_empty(tmp_path, capsys):
    assert main(["feedback", "export", "--data", str(tmp_path), "--format", "jsonl"]) == 0
    assert capsys.readouterr().out == ""
