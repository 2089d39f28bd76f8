"""The CLI as a user runs it: JSON shapes, exit codes and messages for bad input (no tracebacks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def cli(settings, *args, check=False):
    env = {**os.environ, "ASSISTANT_SOURCES_DIR": str(settings.paths.sources_dir),
           "ASSISTANT_INDEX_DIR": str(settings.paths.index_dir)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_ingest_json_summary_is_the_last_line(real_assistant, real_settings):
    result = cli(real_settings, "ingest", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) >= {"added", "updated", "removed", "unchanged", "chunks", "seconds"}
    assert summary["unchanged"] == 1 and summary["added"] == 0


def test_ask_json(real_assistant, real_settings):
    result = cli(real_settings, "ask", "Which Xiaomi executive announced the goal of 10,000 stores?", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "Lu Weibing" in data["answer"] and data["citations"][0]["n"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "   "], "question is empty"),
        (["ask", "x" * 5000], "too long"),
        (["ask", "And?", "--history", '[{"role": 1}]'], "history"),
        (["ask", "And?", "--history", "not json"], "not valid JSON"),
        (["eval", "/nonexistent.jsonl"], "cannot read"),
    ],
)
def test_bad_input_exits_2_with_a_message(real_assistant, real_settings, args, message):
    result = cli(real_settings, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_eval_writes_reports_and_gates_on_accuracy(real_assistant, real_settings, tmp_path):
    from tests.conftest import DATA

    result = cli(real_settings, "eval", str(DATA / "dev_qa.jsonl"), "--out", str(tmp_path), "--json",
                 "--min-accuracy", "0.95")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["accuracy"] >= 0.95
    assert (tmp_path / "report.json").exists() and "| d01 |" in (tmp_path / "report.md").read_text()
    gated = cli(real_settings, "eval", str(DATA / "dev_qa.jsonl"), "--min-accuracy", "1.01")
    assert gated.returncode == 1


def test_bench_measures_both_pipelines_and_writes_its_reports(real_settings, tmp_path):
    out = tmp_path / "bench"
    result = cli(real_settings, "bench", "--sizes", "", "--out", str(out))
    assert result.returncode == 0, result.stderr
    (row,) = json.loads((out / "results.json").read_text())["results"]
    ours, naive = row["ours"], row["naive"]
    assert ours["chunks"] > 5 and naive["chunks"] > 2
    assert ours["ingest_s"] > 0 and naive["ingest_s"] > 0 and row["ingest_speedup"] > 0
    assert 0 < ours["ask_p50_ms"] <= ours["ask_p95_ms"] and ours["peak_rss_mb"] > 100
    assert ours["dev_accuracy"] >= 0.9 and row["cold_start_s"] > 0
    table = (out / "results.md").read_text()
    assert table.count("\n") == 3 and f"| {ours['chunks']} |" in table
