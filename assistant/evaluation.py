"""Score answers against known facts: accuracy, citation support, refusals, retrieval recall, latency."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.errors import InputError
from assistant.facade import Assistant


@dataclass(slots=True)
class EvalItem:
    """One evaluation question (a line of the JSONL file)."""

    id: str
    question: str
    facts: list[list[str]]
    answerable: bool
    history: list[dict] = field(default_factory=list)


@dataclass(slots=True)
class EvalResult:
    """How one question was answered and scored."""

    id: str
    question: str
    answerable: bool
    refused: bool
    correct: bool
    supported: bool
    retrieval_hit: bool
    missing_facts: list[list[str]]
    answer: str
    latency_ms: float


def load_items(path: Path) -> list[EvalItem]:
    """Read a JSONL evaluation file.

    Raises:
        InputError: The file is missing or a line is malformed (the line number is named).

    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read evaluation file {path}: {exc}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(
                EvalItem(
                    id=str(raw.get("id", number)),
                    question=raw["question"],
                    facts=[list(group) for group in raw.get("facts", [])],
                    answerable=bool(raw.get("answerable", True)),
                    history=raw.get("history") or [],
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}:{number}: not a valid evaluation line ({exc})") from None
    if not items:
        raise InputError(f"{path} holds no questions")
    return items


def _found(alternatives: list[str], text: str) -> bool:
    low = text.lower()
    return any(alt.lower() in low for alt in alternatives)


def score_item(item: EvalItem, answer: dict, retrieved_texts: list[str], latency_ms: float) -> EvalResult:
    """Score one answer (``Answer.to_dict()`` shape) against the item's facts."""
    cited = " ".join(c["text"] for c in answer["citations"])
    if item.answerable:
        missing = [group for group in item.facts if not _found(group, answer["answer"])]
        correct = not answer["refused"] and not missing
        supported = correct and all(_found(group, cited) for group in item.facts)
        everything = " ".join(retrieved_texts)
        hit = all(_found(group, everything) for group in item.facts)
    else:
        missing = []
        correct = supported = answer["refused"]
        hit = True
    return EvalResult(
        id=item.id, question=item.question, answerable=item.answerable, refused=answer["refused"],
        correct=correct, supported=supported, retrieval_hit=hit, missing_facts=missing,
        answer=answer["answer"], latency_ms=latency_ms,
    )  # fmt: skip


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def evaluate(assistant: Assistant, items: list[EvalItem]) -> dict:
    """Ask every question and return the report (summary and per-question results)."""
    results = []
    answered_by: Counter[str] = Counter()
    outside = 0
    for item in items:
        answer = assistant.ask(item.question, item.history or None)
        answered_by[answer.backend] += 1
        outside += sum(c.chunk_id not in answer.retrieved for c in answer.citations)
        retrieved = [assistant.corpus.passage(pid).text for pid in answer.retrieved if pid in assistant.corpus.row]
        results.append(score_item(item, answer.to_dict(), retrieved, answer.timings_ms.get("total", 0.0)))
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    latencies = [r.latency_ms for r in results]
    summary = {
        "questions": len(results),
        "backend": assistant.settings.llm.spec,
        "accuracy": round(statistics.fmean(r.correct for r in results), 4),
        "answerable_accuracy": round(statistics.fmean(r.correct for r in answerable), 4) if answerable else None,
        "citation_support": round(statistics.fmean(r.supported for r in answerable), 4) if answerable else None,
        "refusal_accuracy": round(statistics.fmean(r.refused for r in unanswerable), 4) if unanswerable else None,
        "refused_unanswerable": f"{sum(r.refused for r in unanswerable)}/{len(unanswerable)}",
        "retrieval_recall_at_k": round(statistics.fmean(r.retrieval_hit for r in answerable), 4)
        if answerable
        else None,
        "k": assistant.settings.retrieval.top_k,
        "latency_ms_p50": round(_percentile(latencies, 0.5), 2),
        "latency_ms_p95": round(_percentile(latencies, 0.95), 2),
        "citations_outside_retrieved": outside,
        "answered_by": dict(answered_by),
    }
    return {"summary": summary, "results": [asdict(r) for r in results]}


def render_markdown(report: dict) -> str:
    """The report as a Markdown page: summary table, then one row per question."""
    s = report["summary"]
    lines = ["# Evaluation report", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in s.items()]
    lines += ["", "| id | ok | refused | supported | question | answer |", "|---|---|---|---|---|---|"]
    for r in report["results"]:
        answer = r["answer"].replace("|", "\\|").replace("\n", " ")
        ok = "yes" if r["correct"] else "**no**"
        lines.append(f"| {r['id']} | {ok} | {r['refused']} | {r['supported']} | {r['question']} | {answer[:300]} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: Path) -> None:
    """Write ``report.json`` and ``report.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
