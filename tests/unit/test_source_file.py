"""Reading an indexed source's file for "open document": only regular files inside the sources folder."""

from __future__ import annotations

import pytest

from assistant.answer.scorer import AnswerModels
from assistant.errors import SourceError
from assistant.facade import Assistant
from assistant.ingest.documents import DocumentNotFoundError, read_source_file
from assistant.store import PassageStore, make_client


@pytest.fixture
def folder(tmp_path):
    sources = tmp_path / "sources"
    (sources / "notes").mkdir(parents=True)
    (sources / "notes" / "a.md").write_text("# A\n\nText.\n", encoding="utf-8")
    (sources / "inside.md").symlink_to(sources / "notes" / "a.md")
    (tmp_path / "secret.txt").write_text("secret\n", encoding="utf-8")
    (sources / "out.txt").symlink_to(tmp_path / "secret.txt")
    (sources / ".hidden.md").write_text("hidden\n", encoding="utf-8")
    return sources


def test_a_file_inside_the_folder_is_read(folder):
    assert read_source_file(folder, "notes/a.md", 1000) == b"# A\n\nText.\n"
    assert read_source_file(folder, "inside.md", 1000) == b"# A\n\nText.\n", "a link that stays inside is fine"


@pytest.mark.parametrize(
    "source",
    ["out.txt", "../secret.txt", "notes/../../secret.txt", "/etc/passwd", str("/" * 2) + "etc/passwd", "notes",
     ".hidden.md", "notes\\a.md", "missing.md", "", "notes/./a.md"],
)  # fmt: skip
def test_anything_else_is_not_found(folder, source):
    with pytest.raises(DocumentNotFoundError) as raised:
        read_source_file(folder, source, 1000)
    assert raised.value.status == 404


def test_a_file_that_grew_past_the_limit_is_refused(folder):
    with pytest.raises(SourceError, match="limit"):
        read_source_file(folder, "notes/a.md", 5)


def test_the_facade_serves_only_indexed_sources(workspace, fake_embedder):
    store = PassageStore(make_client(workspace), workspace.collection_name)
    bot = Assistant(workspace, fake_embedder, store, models=AnswerModels.load())
    bot.ingest()
    source = "xiaomi-overseas-ev-expansion.md"
    assert bot.source_file(source) == (workspace.paths.sources_dir / source).read_bytes()
    (workspace.paths.sources_dir / "new.txt").write_text("Not indexed yet.\n", encoding="utf-8")
    with pytest.raises(DocumentNotFoundError):
        bot.source_file("new.txt")
