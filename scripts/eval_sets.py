"""Score the assistant, as shipped, on every evaluation set and print one table (issue #11's benchmark).

Each set is indexed on its own in a temporary folder and asked through ``Assistant.ask`` exactly as
``assistant eval`` does. The split column says what the learned models saw of it (tests/data/splits.json):
``train`` sets are not evidence of generality, ``calibration`` chose the thresholds, ``test`` was never seen.

    .venv/bin/python scripts/eval_sets.py                  # every set (SQuAD: the held-out articles, all questions)
    .venv/bin/python scripts/eval_sets.py --squad-sample 0 # skip SQuAD
    .venv/bin/python scripts/eval_sets.py --squad-sample 0 --sets support-kb,facilities-guide
    .venv/bin/python scripts/eval_sets.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import Settings  # noqa: E402
from assistant.evaluation import evaluate, load_items, load_squad, sample_items, temporary_index  # noqa: E402
from assistant.facade import Assistant  # noqa: E402

DATA = ROOT / "tests" / "data"
COLUMNS = ("answerable_accuracy", "refusal_accuracy", "accuracy", "words_per_answer", "latency_ms_p50",
           "latency_ms_p95")  # fmt: skip


def _corpus_sets(splits: dict) -> list[tuple[str, str, Path, list[Path]]]:
    sets = [("article", "test", ROOT / "sources", [DATA / f for f in splits["article"]["test"]])]
    for split, names in splits["corpora"].items():
        for name in names:
            folder = DATA / "corpora" / name
            sets.append((name, split, folder, [folder / "questions.jsonl"]))
    return sets


def run(squad_path: Path, squad_sample: int, seed: int, only: set[str] | None = None) -> list[dict]:
    """Evaluate every set (or the corpora named in ``only``); one summary row per set."""
    splits = json.loads((DATA / "splits.json").read_text(encoding="utf-8"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="eval-sets-") as tmp:
        for name, split, sources, question_files in _corpus_sets(splits):
            if only is not None and name not in only:
                continue
            folder = Path(tmp) / name
            shutil.copytree(sources, folder / "sources", ignore=shutil.ignore_patterns("*.jsonl"))
            settings = Settings(sources_dir=folder / "sources", index_dir=folder / "index", _env_file=None)
            bot = Assistant.load(settings)
            items = [item for f in question_files for item in load_items(f)]
            rows.append({"set": name, "split": split, **evaluate(bot, items)["summary"]})
            print(f"{name}: done", file=sys.stderr)
    if squad_sample and squad_path.exists():
        everything = load_squad(squad_path)  # every article is indexed: a split's questions among all 8
        with temporary_index(Settings(_env_file=None), everything.articles) as settings:
            bot = Assistant.load(settings)
            for split in ("calibration", "test"):
                items = load_squad(squad_path, splits["squad"][split]).items
                items = sample_items(items, squad_sample, seed) if squad_sample > 0 else items
                rows.append({"set": "squad2-dev", "split": split, **evaluate(bot, items)["summary"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "eval" / "squad2-dev.json")
    parser.add_argument("--squad-sample", type=int, default=-1, help="questions per SQuAD split; -1 all, 0 none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--sets", help="comma-separated corpora to run (e.g. meeting-notes,article); default all")
    args = parser.parse_args()
    rows = run(args.squad, args.squad_sample, args.seed, set(args.sets.split(",")) if args.sets else None)
    print("| set | split | questions | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for r in rows:
        print(f"| {r['set']} | {r['split']} | {r['questions']} | " + " | ".join(str(r.get(c)) for c in COLUMNS) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
