"""Score answers against known facts: accuracy, citation support, refusals, retrieval recall, latency.

Questions come from our JSONL format or from a SQuAD 2.0 JSON file; a SQuAD file brings its own
articles, which are indexed into a temporary folder (:func:`temporary_index`) for the run.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import InputError

if TYPE_CHECKING:  # the facade is heavy to import and only a type here; bench imports percentile alone
    from assistant.config import Settings
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
    words: int
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


@dataclass(slots=True)
class SquadSet:
    """The questions of a SQuAD file and the articles they are asked about.

    Attributes:
        articles: Title -> text, the article's paragraphs joined by blank lines.
        items: One item per question; an answerable one has a single fact group holding every gold answer
            text, so a gold answer anywhere in the answer makes it correct.

    """

    articles: dict[str, str]
    items: list[EvalItem]


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read evaluation file {path}: {exc}") from None


def is_squad(path: Path) -> bool:
    """True when ``path`` is one SQuAD-shaped JSON document (``{"data": [...]}``) rather than JSONL lines."""
    try:
        raw = _read_json(path)
    except (InputError, json.JSONDecodeError):
        return False  # JSONL (or unreadable): load_items reports what is wrong with it
    return isinstance(raw, dict) and isinstance(raw.get("data"), list)


def _title_key(title: str) -> str:
    return " ".join(title.replace("_", " ").split()).casefold()


def load_squad(path: Path, articles: list[str] | None = None) -> SquadSet:
    """Read a SQuAD 2.0 file (1.1 too: without ``is_impossible`` every question is answerable).

    Args:
        path: The JSON file.
        articles: Titles to keep (``Normans`` or ``1973_oil_crisis``; case and ``_`` versus space ignored);
            all articles when omitted.

    Raises:
        InputError: The file is not SQuAD-shaped, a named article is not in it, or no question is left.

    """
    try:
        raw = _read_json(path)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc})") from None
    wanted = {_title_key(t): t for t in articles} if articles else None
    texts: dict[str, str] = {}
    items: list[EvalItem] = []
    try:
        for article in raw["data"]:
            title = " ".join(str(article["title"]).replace("_", " ").split())
            if wanted is not None and _title_key(title) not in wanted:
                continue
            paragraphs = article["paragraphs"]
            texts[title] = "\n\n".join(p["context"].strip() for p in paragraphs)
            for paragraph in paragraphs:
                for qa in paragraph["qas"]:
                    answerable = not qa.get("is_impossible", False)
                    gold = list(dict.fromkeys(a["text"].strip() for a in qa.get("answers", []) if a["text"].strip()))
                    if answerable and not gold:
                        continue  # nothing to score it against
                    items.append(EvalItem(id=str(qa["id"]), question=qa["question"],
                                          facts=[gold] if answerable else [], answerable=answerable))  # fmt: skip
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} is not a SQuAD file: missing or malformed {exc}") from None
    if wanted is not None:
        unknown = sorted(set(wanted) - {_title_key(t) for t in texts})
        if unknown:
            names = ", ".join(wanted[k] for k in unknown)
            known = ", ".join(a["title"] for a in raw["data"])
            raise InputError(f"{path} has no article {names}; it has {known}")
    if not items:
        raise InputError(f"{path} holds no questions")
    return SquadSet(articles=texts, items=items)


def sample_items(items: list[EvalItem], n: int, seed: int = 0) -> list[EvalItem]:
    """A seeded random sample of ``n`` items, stratified: half answerable, half not, where there are enough.

    When one kind runs short the other fills the sample. The sample keeps the file's order.
    """
    if n >= len(items):
        return list(items)
    rng = random.Random(seed)
    answerable = [i for i, item in enumerate(items) if item.answerable]
    unanswerable = [i for i, item in enumerate(items) if not item.answerable]
    n_answerable = min(len(answerable), n - min(len(unanswerable), n // 2))
    chosen = rng.sample(answerable, n_answerable) + rng.sample(unanswerable, n - n_answerable)
    return [items[i] for i in sorted(chosen)]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "article"


@contextmanager
def temporary_index(settings: Settings, articles: dict[str, str]) -> Iterator[Settings]:
    """Write ``articles`` as Markdown sources into a temporary folder and yield settings that index them there.

    Everything else in ``settings`` (embedder, chunking, retrieval, answer backend) is kept. The index is
    embedded Chroma in the same folder even when a Chroma server is configured, so a benchmark never writes
    into a shared index. The folder is deleted on exit.
    """
    with tempfile.TemporaryDirectory(prefix="assistant-eval-") as root:
        sources = Path(root) / "sources"
        sources.mkdir()
        for number, (title, text) in enumerate(articles.items()):
            # Front matter as our own articles carry it; json.dumps quotes the title as valid YAML.
            page = f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\n---\n{text}\n"
            (sources / f"{number:03d}-{_slug(title)}.md").write_text(page, encoding="utf-8")
        local = settings.model_copy(deep=True)
        local.paths.sources_dir, local.paths.index_dir = sources, Path(root) / "index"
        local.chroma.host = None
        local.sources_dir = local.index_dir = local.chroma_host = None  # the aliases were folded in already
        yield local


_CITATION_MARK = re.compile(r"\[\d+\]")


def count_words(answer: str) -> int:
    """Words in an answer, its ``[n]`` citation markers left out."""
    return len(_CITATION_MARK.sub(" ", answer).split())


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
        answer=answer["answer"], words=0 if answer["refused"] else count_words(answer["answer"]),
        latency_ms=latency_ms,
    )  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; 0.0 for no values."""
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
    answered = [r for r in results if not r.refused]
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
        "words_per_answer": round(statistics.fmean(r.words for r in answered), 1) if answered else None,
        "latency_ms_p50": round(percentile(latencies, 0.5), 2),
        "latency_ms_p95": round(percentile(latencies, 0.95), 2),
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
