"""``assistant bench``: ingest and ask figures on growing corpora, against the naive LangChain pipeline.

Each measurement runs in its own child process, so peak RSS and cold start are the child's own. The
naive pipeline is the tutorial one: ``RecursiveCharacterTextSplitter(1000, 200)`` +
``HuggingFaceEmbeddings`` (the same bundled model) + ``Chroma.from_documents`` + ``similarity_search(k=4)``,
fed the same extracted text our loaders produce.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assistant.config import Settings
from assistant.errors import SourceError
from assistant.evaluation import percentile

DEFAULT_DISTRACTORS = [
    "/usr/share/doc/python3.11/html",
    "/usr/share/doc/python-django-doc/html",
    "/usr/share/doc/python-sqlalchemy-doc/html",
    "/usr/share/doc/postgresql-doc-15/html",
    "/usr/share/doc/libboost1.81-doc/doc/html",
    "/usr/share/doc/python-scipy-doc/html",
]
REPEATS = 3
#: The question a cold `assistant ask` is timed with.
COLD_QUESTION = "Which Xiaomi executive announced the store goal?"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _questions(dev_file: Path) -> list[dict]:
    return [json.loads(line) for line in dev_file.read_text().splitlines() if line.strip()]


# --- child processes -------------------------------------------------------------------------------


def child_ours(sources: Path, index: Path, dev_file: Path) -> dict:
    """Ingest with our pipeline, re-ingest, ask, evaluate; figures as a dict."""
    from assistant.evaluation import evaluate, load_items
    from assistant.facade import Assistant

    settings = Settings(sources_dir=sources, index_dir=index, _env_file=None)
    settings.answer.cache_size = 0  # measure the pipeline, not the answer cache
    started = time.perf_counter()
    assistant = Assistant.load(settings, refresh=False)
    load_s = time.perf_counter() - started
    report = assistant.ingest()
    reingest = assistant.ingest()
    questions = _questions(dev_file)
    totals, retrievals, first = [], [], []
    for q in questions:  # first pass: each question's embedding is computed, not cached
        first.append(assistant.ask(q["question"], q.get("history")).timings_ms["total"])
    for _ in range(REPEATS):
        for q in questions:
            answer = assistant.ask(q["question"], q.get("history"))
            totals.append(answer.timings_ms["total"])
            retrievals.append(answer.timings_ms.get("embed", 0) + answer.timings_ms.get("retrieve", 0))
    summary = evaluate(assistant, load_items(dev_file))["summary"]
    source_kb = sum(p.stat().st_size for p in sources.rglob("*") if p.is_file()) / 1024
    return {
        "chunks": report.chunks,
        "files": report.added,
        "source_kb": round(source_kb, 1),
        "model_load_s": round(load_s, 2),
        "ingest_s": round(report.seconds, 2),
        "ingest_kb_per_s": round(source_kb / report.seconds, 1),
        "ingest_chunks_per_s": round(report.chunks / report.seconds, 1),
        "reingest_s": round(reingest.seconds, 3),
        "reingest_pct_of_ingest": round(100 * reingest.seconds / report.seconds, 2),
        "ask_first_p50_ms": round(statistics.median(first), 1),
        "ask_p50_ms": round(statistics.median(totals), 1),
        "ask_p95_ms": round(percentile(totals, 0.95), 1),
        "retrieval_p50_ms": round(statistics.median(retrievals), 1),
        "retrieval_p95_ms": round(percentile(retrievals, 0.95), 1),
        "dev_accuracy": summary["accuracy"],
        "dev_recall_at_k": summary["retrieval_recall_at_k"],
        "index_mb": round(_dir_mb(index), 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def child_naive(sources: Path, index: Path, dev_file: Path) -> dict:
    """The tutorial pipeline on the same extracted text."""
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from assistant.embeddings import model_path
    from assistant.ingest.loaders import load_source
    from assistant.ingest.pipeline import discover

    embeddings = HuggingFaceEmbeddings(model_name=str(model_path(Settings().embedding.model)))
    started = time.perf_counter()
    files, _ = discover(sources)
    texts = []
    for source_id, path in files:
        try:
            text = load_source(path, path.read_bytes()).text
        except SourceError:  # skipped by both pipelines
            continue
        texts.append(Document(page_content=text, metadata={"source": source_id}))
    docs = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(texts)
    store = Chroma.from_documents(docs, embeddings, persist_directory=str(index))
    ingest_s = time.perf_counter() - started
    questions = _questions(dev_file)
    for q in questions:
        store.similarity_search(q["question"], k=4)
    latencies = []
    for _ in range(REPEATS):
        for q in questions:
            t0 = time.perf_counter()
            store.similarity_search(q["question"], k=4)
            latencies.append((time.perf_counter() - t0) * 1000)
    source_kb = sum(p.stat().st_size for p in sources.rglob("*") if p.is_file()) / 1024
    return {
        "chunks": len(docs),
        "ingest_s": round(ingest_s, 2),
        "ingest_kb_per_s": round(source_kb / ingest_s, 1),
        "retrieval_p50_ms": round(statistics.median(latencies), 1),
        "retrieval_p95_ms": round(percentile(latencies, 0.95), 1),
        "index_mb": round(_dir_mb(index), 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _run_child(kind: str, sources: Path, index: Path, dev_file: Path) -> dict:
    command = [sys.executable, "-m", "assistant.bench", kind, str(sources), str(index), str(dev_file)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{kind} benchmark failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _cold_start(sources: Path, index: Path, question: str) -> dict:
    """A new in-process `assistant ask` on a built index: seconds to its printed answer and its own peak RSS."""
    env = {**os.environ, "ASSISTANT_SOURCES_DIR": str(sources), "ASSISTANT_INDEX_DIR": str(index)}
    env.pop("ASSISTANT_SERVER_URL", None)  # a restart of the assistant itself, not a call to a running one
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "assistant.cli", "ask", question, "--json"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    stderr = child.stderr.read()
    child.stderr.close()
    _, status, usage = os.wait4(child.pid, 0)  # reaped here, for the rusage of this child alone
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"assistant ask failed:\n{stderr.decode(errors='replace')[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def restart(sources: Path, index: Path, runs: int, question: str = COLD_QUESTION) -> dict:
    """Restart to first answer on an index built already: ``runs`` new ``assistant ask`` processes in turn.

    The first one finds the saved BM25 index (or builds and saves it, if the index is new or changed); the
    others load it. With a Chroma server (``ASSISTANT_CHROMA_HOST``) nothing is saved and every run rebuilds it.
    """
    lexical = index / "lexical"
    had_saved = lexical.is_dir() and any(lexical.iterdir())
    figures = [_cold_start(sources, index, question) for _ in range(runs)]
    later = [f["seconds"] for f in figures[1:]] or [figures[0]["seconds"]]
    return {
        "index": str(index), "bm25_saved_before_first_run": had_saved, "runs": figures,
        "first_s": figures[0]["seconds"], "later_median_s": round(statistics.median(later), 2),
        "peak_rss_mb": max(f["peak_rss_mb"] for f in figures),
    }  # fmt: skip


# --- corpora ---------------------------------------------------------------------------------------


def _distractor_files(roots: list[str]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        folder = Path(root)
        if folder.is_dir():
            files.extend(sorted(p for p in folder.rglob("*.html") if p.is_file() and not p.is_symlink()))
    return files


def build_corpora(work: Path, article_dir: Path, targets: list[int], roots: list[str]) -> list[tuple[str, Path]]:
    """The article alone, then the article plus distractor HTML pages up to each target passage count."""
    from assistant.ingest.chunking import chunk_document
    from assistant.ingest.loaders import load_source

    settings = Settings(_env_file=None)
    corpora = [("article", work / "corpus-article")]
    shutil.copytree(article_dir, corpora[0][1])
    pool = _distractor_files(roots)
    if targets and not pool:
        print("no distractor pages found; run scripts/bench.sh (it installs Debian doc packages)", file=sys.stderr)
        return corpora
    chosen: list[Path] = []
    chunks = 0
    for target in sorted(targets):
        while chunks < target and pool:
            path = pool.pop(0)
            try:
                doc = load_source(path, path.read_bytes())
            except SourceError:  # unreadable pages are not part of the corpus
                continue
            chunks += len(chunk_document(path.name, doc, settings.chunking))
            chosen.append(path)
        folder = work / f"corpus-{target}"
        shutil.copytree(article_dir, folder)
        for i, path in enumerate(chosen):
            target_path = folder / "distractors" / f"{i:06d}-{path.name}"
            target_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target_path)
        corpora.append((f"+{chunks} distractor passages", folder))
        if not pool:
            break
    return corpora


# --- report ----------------------------------------------------------------------------------------


def render_markdown(results: list[dict]) -> str:
    """One table row per corpus: ours, naive, and the ratios the targets are stated in."""
    head = (
        "| corpus | passages | ingest s (ours / naive) | KB/s (ours / naive) | speed-up | re-ingest % | "
        "first ask p50 ms | warm ask p50 / p95 ms | retrieval p50 ms (ours / naive) | peak RSS MB | index MB | "
        "cold start s | dev acc / recall@k |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in results:
        o, n = r["ours"], r.get("naive") or {}
        speed = f"{o['ingest_kb_per_s'] / n['ingest_kb_per_s']:.2f}×" if n else "–"
        rows.append(
            f"| {r['corpus']} | {o['chunks']} | {o['ingest_s']} / {n.get('ingest_s', '–')} | "
            f"{o['ingest_kb_per_s']} / {n.get('ingest_kb_per_s', '–')} | {speed} | {o['reingest_pct_of_ingest']} | "
            f"{o.get('ask_first_p50_ms', '–')} | {o['ask_p50_ms']} / {o['ask_p95_ms']} | "
            f"{o['retrieval_p50_ms']} / {n.get('retrieval_p50_ms', '–')} | "
            f"{o['peak_rss_mb']} | {o['index_mb']} | {r.get('cold_start_s', '–')} | "
            f"{o['dev_accuracy']} / {o.get('dev_recall_at_k', '–')} |"
        )
    return head + "\n".join(rows) + "\n"


def plot(results: list[dict], path: Path) -> bool:
    """Ingest throughput and ask latency against corpus size (PNG); False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sizes = [r["ours"]["chunks"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(sizes, [r["ours"]["ingest_kb_per_s"] for r in results], "o-", label="ours")
    with_naive = [r for r in results if r.get("naive")]
    naive_sizes = [r["ours"]["chunks"] for r in with_naive]
    if with_naive:
        left.plot(naive_sizes, [r["naive"]["ingest_kb_per_s"] for r in with_naive], "s--", label="naive LangChain")
    left.set(xscale="log", xlabel="passages", ylabel="ingest KB/s", title="Ingest throughput")
    left.legend()
    right.plot(sizes, [r["ours"]["ask_p50_ms"] for r in results], "o-", label="ask p50")
    right.plot(sizes, [r["ours"]["ask_p95_ms"] for r in results], "o-", label="ask p95")
    if with_naive:
        right.plot(
            naive_sizes, [r["naive"]["retrieval_p50_ms"] for r in with_naive], "s--", label="naive retrieval p50"
        )
    right.set(xscale="log", xlabel="passages", ylabel="ms", title="Latency")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def run(
    settings: Settings,
    *,
    quick: bool,
    out: Path,
    targets: list[int] | None,
    dev_file: Path,
    naive_up_to: int | None = None,
) -> list[dict]:
    """Build the corpora, measure each one, write JSON, Markdown and PNG to ``out``.

    The naive pipeline runs on every corpus, on none (``naive_up_to=0``) or on corpora of at most
    ``naive_up_to`` passages.
    """
    targets = targets if targets is not None else ([1500] if quick else [10_000, 100_000])
    results = []
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        work = Path(tmp)
        for label, folder in build_corpora(work, settings.paths.sources_dir, targets, DEFAULT_DISTRACTORS):
            index = work / f"index-{folder.name}"
            print(f"[bench] {label}: our pipeline…", file=sys.stderr, flush=True)
            entry = {"corpus": label, "ours": _run_child("ours", folder, index, dev_file)}
            cold = _cold_start(folder, index, COLD_QUESTION)
            entry["cold_start_s"], entry["cold_start_rss_mb"] = cold["seconds"], cold["peak_rss_mb"]
            if naive_up_to is None or entry["ours"]["chunks"] <= naive_up_to:
                print(f"[bench] {label}: naive LangChain pipeline…", file=sys.stderr, flush=True)
                entry["naive"] = _run_child("naive", folder, work / f"naive-{folder.name}", dev_file)
                entry["ingest_speedup"] = round(entry["ours"]["ingest_kb_per_s"] / entry["naive"]["ingest_kb_per_s"], 2)
            results.append(entry)
            print(json.dumps(entry), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{os.cpu_count()} cores", "quick": quick, "time": time.strftime("%Y-%m-%d %H:%M")}
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    (out / "results.md").write_text(render_markdown(results))
    plot(results, out / "results.png")
    return results


if __name__ == "__main__":
    kind, sources, index, dev = sys.argv[1:5]
    figures = {"ours": child_ours, "naive": child_naive}[kind](Path(sources), Path(index), Path(dev))
    print(json.dumps(figures))
