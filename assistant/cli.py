"""Command line: ``assistant ingest | ask | eval | serve``.

Human-readable text by default, ``--json`` for programs. Errors are one line on stderr with a
non-zero exit code (2 for bad input, 1 for anything else), never a traceback.

Each command imports what it needs when it runs, so ``--help`` loads neither pydantic nor numpy, and
``assistant ask`` answered by a running server loads the settings and an HTTP client only (no Chroma,
BM25, ONNX Runtime or web framework); a test holds both.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import AssistantError, InputError, SourceError

if TYPE_CHECKING:
    from assistant.config import Settings

EXIT_USER_ERROR = 2


def _settings(args: argparse.Namespace) -> Settings:
    from assistant.config import Settings

    overrides: dict = {}
    if getattr(args, "sources", None):
        overrides["sources_dir"] = args.sources
    if getattr(args, "index", None):
        overrides["index_dir"] = args.index
    if getattr(args, "llm", None):
        overrides["llm"] = args.llm
    return Settings(**overrides)


def _load(args: argparse.Namespace, *, progress: bool = False):
    from assistant.facade import Assistant

    return Assistant.load(_settings(args), progress=progress)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Index new and changed sources."""
    from assistant.facade import Assistant

    assistant = Assistant.load(_settings(args), refresh=False)
    report = assistant.ingest(progress=not args.json and sys.stderr.isatty(), lock_wait_s=args.wait)
    for skip in report.skipped:
        print(f"skipped {skip['source']}: {skip['reason']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.summary()))
    else:
        print(
            f"{report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.unchanged} unchanged; {report.chunks} passages; {len(report.skipped)} skipped "
            f"({report.seconds:.1f} s)"
        )
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question: through the server at ``server.url`` when one is set and up, else in-process."""
    history = None
    if args.history:
        try:
            history = json.loads(args.history)
        except json.JSONDecodeError as exc:
            raise InputError(f"--history is not valid JSON: {exc}") from None
    settings = _settings(args)
    answer = None
    # --sources, --index and --llm describe an assistant of their own, which a running server is not.
    if settings.server.url and not (args.sources or args.index or args.llm):
        answer = _ask_server(settings, args.question, history)
    if answer is None:
        from assistant.facade import Assistant

        answer = Assistant.load(settings).ask(args.question, history).to_dict()
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
        return 0
    print(answer["answer"])
    for c in answer["citations"]:
        quote = " … ".join(c["text"][s - c["start"] : e - c["start"]] for s, e in c["highlights"])
        print(f"\n[{c['n']}] {c['title']} — {c['source']} (chars {c['start']}–{c['end']})\n    “{quote}”")
    return 0


#: Statuses a proxy answers for a server that is down: as good as unreachable.
_GATEWAY_DOWN = {502, 503, 504}


def _ask_server(settings: Settings, question: str, history: list | None) -> dict | None:
    """The running server's answer (``Answer.to_dict()``), or ``None`` after a note on stderr when it is unreachable.

    Raises:
        InputError: The server found the question or history malformed (4xx but 401, 403 and 429).
        AssistantError: The server refused the key or the rate, or failed.

    """
    import httpx

    from assistant.config import split_csv

    url = f"{settings.server.url.rstrip('/')}/api/ask"
    keys = split_csv(settings.security.api_keys)
    headers = {"Authorization": f"Bearer {keys[0]}"} if keys else {}
    body = {"question": question, **({"history": history} if history else {})}
    # Connecting fails fast when nothing listens; answering may take a generative backend's whole timeout.
    timeout = httpx.Timeout(settings.llm.timeout_s + 30, connect=3.0)
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        print(f"note: the server at {settings.server.url} is unreachable ({exc}); answering here", file=sys.stderr)
        return None
    except httpx.HTTPError as exc:
        raise AssistantError(f"the server at {settings.server.url} failed to answer: {exc}") from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code == 200 and isinstance(data, dict):
        return data
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if message is None and response.status_code in _GATEWAY_DOWN:  # a proxy's page, not the assistant's error
        print(f"note: the server at {settings.server.url} is down (HTTP {response.status_code}); answering here",
              file=sys.stderr)  # fmt: skip
        return None
    message = f"the server at {settings.server.url} answered HTTP {response.status_code}: {message or 'no details'}"
    if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
        raise InputError(message)
    raise AssistantError(message)


def cmd_eval(args: argparse.Namespace) -> int:
    """Score answers on a JSONL question file or a SQuAD 2.0 JSON file."""
    from assistant.evaluation import (
        evaluate,
        is_squad,
        load_items,
        load_squad,
        sample_items,
        temporary_index,
        write_report,
    )
    from assistant.facade import Assistant

    path = Path(args.file)
    articles = [t.strip() for t in args.articles.split(",") if t.strip()] if args.articles else None
    progress = not args.json and sys.stderr.isatty()
    if is_squad(path):
        squad = load_squad(path, articles)
        items = sample_items(squad.items, args.sample, args.seed) if args.sample else squad.items
        with temporary_index(_settings(args), squad.articles) as settings:
            if not args.json:
                print(f"indexing {len(squad.articles)} articles into a temporary index ...", file=sys.stderr)
            report = evaluate(Assistant.load(settings, progress=progress), items)
        report["summary"] = {"dataset": path.name, "articles": len(squad.articles), **report["summary"]}
    else:
        if articles:
            raise InputError("--articles applies to SQuAD files only")
        items = load_items(path)
        items = sample_items(items, args.sample, args.seed) if args.sample else items
        report = evaluate(_load(args), items)
    if args.out:
        write_report(report, Path(args.out))
    summary = report["summary"]
    if args.json:
        print(json.dumps(summary))
    else:
        for r in report["results"]:
            mark = "ok  " if r["correct"] else "FAIL"
            print(f"{mark} {r['id']:>6}  {r['question'][:60]:<60}  {r['answer'][:70]}")
        print()
        for key, value in summary.items():
            print(f"{key:>24}: {value}")
    if args.min_accuracy is not None and summary["accuracy"] < args.min_accuracy:
        print(f"accuracy {summary['accuracy']} is below --min-accuracy {args.min_accuracy}", file=sys.stderr)
        return 1
    return 0


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the chat UI, the HTTP API and the widget."""
    from assistant.api.server import serve
    from assistant.logs import setup_logging

    settings = _settings(args)
    setup_logging(settings.log)
    if args.host:
        settings.server.host = args.host
    if args.port:
        settings.server.port = args.port
    serve(settings)
    return 0


def cmd_feedback_export(args: argparse.Namespace) -> int:
    """Write the stored feedback (one entry per rating, comments included) as CSV or JSON Lines."""
    from assistant.feedback import FeedbackLog, export_feedback

    settings = _settings(args)
    folder = args.data or settings.paths.data_dir
    entries = FeedbackLog(folder / "feedback.jsonl").entries()
    text = export_feedback(entries, args.format)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"exported {len(entries)} feedback entries to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure ingest and ask on growing corpora against the naive LangChain pipeline."""
    from assistant.bench import restart, run

    if args.restart:
        settings = _settings(args)
        figures = restart(settings.paths.sources_dir, settings.paths.index_dir, args.restart)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "restart.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures))
        return 0
    targets = [int(s) for s in args.sizes.split(",") if s.strip()] if args.sizes is not None else None
    naive_limit = 0 if args.no_naive else args.naive_up_to
    results = run(
        _settings(args), quick=args.quick, out=Path(args.out), targets=targets, naive_up_to=naive_limit,
        dev_file=Path(args.dev),
    )  # fmt: skip
    print(f"wrote {args.out}/results.json, results.md, results.png ({len(results)} corpora)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subcommand per verb."""
    parser = argparse.ArgumentParser(
        prog="assistant", description="Answers questions from a folder of source articles, with citations."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sources", type=Path, help="sources folder (default: ASSISTANT_SOURCES_DIR or ./sources)")
        p.add_argument("--index", type=Path, help="index folder (default: ASSISTANT_INDEX_DIR or ./index)")

    p = sub.add_parser("ingest", help="index new and changed sources, drop deleted ones")
    common(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait if another ingest is running")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "ask", help="answer one question with citations",
        description="Answer one question with citations. With ASSISTANT_SERVER_URL set (server.url) the running "
        "server answers it, which saves loading the index; if the server cannot be reached, a note goes to stderr "
        "and the question is answered here. --sources, --index and --llm always answer here.",
    )  # fmt: skip
    common(p)
    p.add_argument("question", help="the question, in quotes")
    p.add_argument("--history", help='earlier turns as JSON: [{"role": "user", "content": "..."}, ...]')
    p.add_argument("--llm", help="answer backend, e.g. extractive or openai:<model>")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "eval", help="score answers on a JSONL file of questions and known facts, or on a SQuAD 2.0 file",
        description="Ask every question and score the answers. A SQuAD 2.0 JSON file brings its own articles: "
        "they are indexed into a temporary folder (deleted afterwards) with the current settings, --sources and "
        "--index left unused, and an answerable question counts as correct when it is not refused and a gold "
        "answer appears in the answer.",
    )  # fmt: skip
    common(p)
    p.add_argument("file", help="JSONL lines {id, question, facts, answerable, history?}, or SQuAD 2.0 JSON")
    p.add_argument(
        "--sample", type=_positive_int, metavar="N",
        help="ask a random sample of N questions, half answerable and half unanswerable where there are enough",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the --sample draw (default 0)")
    p.add_argument(
        "--articles", metavar="TITLE[,TITLE]",
        help="SQuAD only: index and ask about these articles alone (e.g. a held-out split)",
    )  # fmt: skip
    p.add_argument("--llm", help="answer backend to evaluate")
    p.add_argument("--out", help="folder for report.json and report.md")
    p.add_argument("--min-accuracy", type=float, help="exit non-zero when accuracy is below this")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="benchmark ingest and ask against the naive LangChain pipeline")
    common(p)
    p.add_argument("--quick", action="store_true", help="small corpora only (for CI)")
    p.add_argument("--sizes", help="comma-separated distractor passage targets (default 10000,100000)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive pipeline")
    p.add_argument(
        "--naive-up-to", type=int, default=None, metavar="N",
        help="run the naive pipeline only on corpora of at most N passages (it takes ~45 min at 100k)",
    )  # fmt: skip
    p.add_argument(
        "--restart", type=_positive_int, metavar="RUNS",
        help="measure restart to first answer instead: RUNS new 'assistant ask' processes on the index already "
        "built at --index (from --sources), the first saving BM25 if it is not saved yet; writes restart.json",
    )  # fmt: skip
    p.add_argument("--dev", default="tests/data/dev_qa.jsonl", help="questions for latency and accuracy")
    p.add_argument("--out", default="docs/benchmarks", help="folder for results.json/.md/.png")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("feedback", help="work with the ratings and comments users left")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser(
        "export", help="write the feedback as CSV or JSON Lines",
        description="Write every rating (thumbs up/down, question, answer, cited sources and comment), oldest "
        "first, for an evaluation team to turn into test questions. A comment added after a rating is merged "
        "into it. CSV cells a spreadsheet would run as formulas start with '.",
    )  # fmt: skip
    p.add_argument("--format", choices=("csv", "jsonl"), default="jsonl", help="output format (default jsonl)")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.add_argument("--data", type=Path, help="data folder holding feedback.jsonl (default: ASSISTANT_PATHS__DATA_DIR)")
    p.set_defaults(func=cmd_feedback_export)

    p = sub.add_parser("serve", help="serve the chat UI, HTTP API and embeddable widget")
    common(p)
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    # Warnings and errors only, held at the handler: bm25s sets its own logger to DEBUG when it is imported.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, SourceError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except AssistantError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the index keeps every source that finished", file=sys.stderr)
        return 130
    except ValueError as exc:  # pydantic validation of settings
        print(f"error: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
