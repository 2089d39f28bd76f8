"""``assistant eval`` on a SQuAD 2.0 file: its articles indexed in a temporary folder with the real embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ARTICLES = {
    "Lighthouse_of_Varn": [
        (
            "The Lighthouse of Varn stands on a granite headland north of the harbour. It was completed in 1871 "
            "by the engineer Mara Olsen, who designed its spiral stair of cast iron.",
            [("When was the Lighthouse of Varn completed?", "1871"),
             ("Who designed the spiral stair of the lighthouse?", "Mara Olsen"),
             ("What is the lighthouse's stair made of?", "cast iron")],
            ["What colour is the lighthouse's lantern room painted?"],
        ),
        (
            "Its lamp burned whale oil until 1904, when a kerosene burner replaced it. The light can be seen "
            "from 22 nautical miles away on a clear night.",
            [("What fuel did the lamp burn before 1904?", "whale oil"),
             ("How far away can the light be seen?", "22 nautical miles")],
            ["How many keepers lived at the lighthouse in 1904?"],
        ),
    ],
    "Saltmarsh_beetle": [
        (
            "The saltmarsh beetle is a small black beetle that lives only in tidal marshes of the Baltic coast. "
            "Adults feed on the roots of sea lavender and grow to about 4 millimetres long.",
            [("Where does the saltmarsh beetle live?", "tidal marshes"),
             ("What do adult saltmarsh beetles feed on?", "sea lavender"),
             ("How long do saltmarsh beetles grow?", "4 millimetres")],
            ["How many eggs does a saltmarsh beetle lay?"],
        ),
    ],
}  # fmt: skip


def _squad() -> dict:
    data = []
    for title, paragraphs in ARTICLES.items():
        rows = []
        for p, (context, answerable, unanswerable) in enumerate(paragraphs):
            qas = [{"id": f"{title[:4]}{p}a{i}", "question": q, "is_impossible": False,
                    "answers": [{"text": gold, "answer_start": context.index(gold)}]}
                   for i, (q, gold) in enumerate(answerable)]  # fmt: skip
            qas += [{"id": f"{title[:4]}{p}u{i}", "question": q, "is_impossible": True, "answers": []}
                    for i, q in enumerate(unanswerable)]  # fmt: skip
            rows.append({"context": context, "qas": qas})
        data.append({"title": title, "paragraphs": rows})
    return {"version": "v2.0", "data": data}


def eval_cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "eval", *args], capture_output=True, text=True,
                            env=dict(os.environ), timeout=300)  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _eval_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("assistant-eval-*")}


def test_eval_indexes_a_squad_file_and_reports_the_squad_figures(tmp_path):
    path = tmp_path / "tiny_squad.json"
    path.write_text(json.dumps(_squad()), encoding="utf-8")
    before = _eval_dirs()
    result = eval_cli(str(path), "--json", "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["dataset"] == "tiny_squad.json" and summary["articles"] == 2 and summary["questions"] == 11
    assert summary["refused_unanswerable"].endswith("/3")
    for key in ("accuracy", "answerable_accuracy", "refusal_accuracy", "retrieval_recall_at_k"):
        assert 0.0 <= summary[key] <= 1.0, key
    # Two short articles: every gold answer is retrieved, and the answerer gets most of them.
    assert summary["retrieval_recall_at_k"] == 1.0 and summary["answerable_accuracy"] >= 0.6
    assert 0 < summary["words_per_answer"] < 80
    assert 0 < summary["latency_ms_p50"] <= summary["latency_ms_p95"]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert {r["id"] for r in report["results"]} >= {"Ligh0a0", "Salt0u0"}
    assert _eval_dirs() == before  # the temporary sources and index are gone

    held_out = eval_cli(str(path), "--json", "--articles", "Saltmarsh beetle", "--sample", "2", "--seed", "3")
    assert held_out.returncode == 0, held_out.stderr
    summary = json.loads(held_out.stdout)
    assert summary["articles"] == 1 and summary["questions"] == 2 and summary["refused_unanswerable"].endswith("/1")

    unknown = eval_cli(str(path), "--articles", "Atlantis")
    assert unknown.returncode == 2 and "no article Atlantis" in unknown.stderr
