"""Chroma server mode: a real `chroma run` on loopback, two replicas sharing it, the core QA checks."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.evaluation import evaluate, load_items
from assistant.facade import Assistant
from assistant.store import PassageStore, make_client
from tests.conftest import ARTICLE, DATA
from tests.integration.servers import free_port, run_process

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-data")
    command = [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    with run_process(command, f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout_s=60):
        yield port


@pytest.fixture(scope="module")
def server_settings(chroma_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("replica")
    (root / "sources").mkdir()
    shutil.copy(ARTICLE, root / "sources" / ARTICLE.name)
    settings = Settings(
        sources_dir=root / "sources", index_dir=root / "index", chroma_host="127.0.0.1", chroma_port=chroma_server,
        _env_file=None,
    )  # fmt: skip
    settings.retrieval.refresh_interval_s = 0
    return settings


def replica(settings, embedder) -> Assistant:
    return Assistant(settings, embedder, PassageStore(make_client(settings), settings.collection_name))


def test_core_questions_against_a_chroma_server(server_settings, real_assistant):
    first = replica(server_settings, real_assistant.embedder)
    report = first.ingest()
    assert report.added == 1 and report.chunks > 0
    assert not (server_settings.paths.index_dir / "chroma").exists(), "server mode writes no local index"
    summary = evaluate(first, load_items(DATA / "dev_qa.jsonl"))["summary"]
    # The same gate as the embedded store's (test_grounded_answers).
    assert summary["accuracy"] >= 0.95 and summary["refused_unanswerable"] == "3/3", summary


def test_a_second_replica_sees_what_the_first_ingested(server_settings, real_assistant):
    first = replica(server_settings, real_assistant.embedder)
    second = replica(server_settings, real_assistant.embedder)
    assert second.health()["chunks"] == first.health()["chunks"] > 0
    (server_settings.paths.sources_dir / "canteen.md").write_text(
        "# Canteen\n\nThe staff canteen serves vegetarian curry every Thursday.\n"
    )
    assert first.ingest().added == 1
    answer = second.ask("What does the staff canteen serve on Thursday?")
    assert not answer.refused and "curry" in answer.answer


def test_unreachable_chroma_server_is_a_clear_error(tmp_path):
    from assistant.errors import IndexError_

    settings = Settings(sources_dir=tmp_path, index_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=free_port(),
                        _env_file=None)  # fmt: skip
    with pytest.raises(IndexError_, match="cannot reach the Chroma server"):
        make_client(settings)
