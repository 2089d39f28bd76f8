"""SIGKILL during ingest: the index stays consistent, keeps serving, and the next ingest repairs it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.ingest.chunking import chunk_document
from assistant.ingest.loaders import load_source
from assistant.retrieval import Corpus
from assistant.store import PassageStore, make_client
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
WORDS = [
    "market",
    "vehicle",
    "store",
    "revenue",
    "export",
    "europe",
    "china",
    "premium",
    "brand",
    "battery",
    "price",
    "model",
    "team",
    "city",
]


def write_corpus(folder: Path, version: int, count: int = 16) -> None:
    rng = random.Random(version)
    for i in range(count):
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + f" v{version} f{i} s{j}."
            for j in range(rng.randint(40, 70))
        ]
        (folder / f"doc{i:02d}.txt").write_text("\n".join(sentences) + "\n")


def expected_texts(folder: Path, settings: Settings) -> dict[str, list[str]]:
    out = {}
    for path in sorted(folder.glob("*.txt")):
        doc = load_source(path, path.read_bytes())
        out[path.name] = [c.text for c in chunk_document(path.name, doc, settings.chunking)]
    return out


def visible(settings: Settings) -> dict[str, list[str]]:
    store = PassageStore(make_client(settings), settings.collection_name)
    corpus = Corpus(store)
    by_source: dict[str, list[tuple[int, str]]] = {}
    for text, meta in zip(corpus.texts, corpus.metas, strict=True):
        by_source.setdefault(meta["source"], []).append((int(meta["n"]), text))
    for source, rows in by_source.items():  # a visible source has every passage of one version
        assert sorted(n for n, _ in rows) == list(range(len(rows))), source
    return {s: [t for _, t in sorted(rows)] for s, rows in by_source.items()}


def run_ingest(sources: Path, index: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.kill_target", str(sources), str(index)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_ingest_survives_sigkill_at_random_moments(tmp_path):
    sources, index = tmp_path / "sources", tmp_path / "index"
    sources.mkdir()
    settings = Settings(sources_dir=sources, index_dir=index, _env_file=None)
    write_corpus(sources, version=1)
    assert run_ingest(sources, index).wait(timeout=300) == 0
    old = expected_texts(sources, settings)
    assert visible(settings) == old

    write_corpus(sources, version=2)  # every file changes
    (sources / "doc00.txt").unlink()
    new = expected_texts(sources, settings)
    rng = random.Random(7)
    kills = 0
    for _ in range(10):
        process = run_ingest(sources, index)
        assert process.stdout.readline().strip() == "started"  # imports done, ingest begins
        time.sleep(rng.uniform(0.2, 2.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
        shown = visible(settings)
        for source, texts in shown.items():
            assert texts in (old.get(source), new.get(source)), f"{source} mixes versions"
        assert shown, "the index must keep serving what it held"
    assert kills >= 8, f"only {kills} ingests were still running when killed"
    finish = run_ingest(sources, index)
    _, err = finish.communicate(timeout=300)
    assert finish.returncode == 0, err
    assert visible(settings) == new
    print(f"\nkill-safety: {kills} SIGKILLs survived out of {kills} tried")
