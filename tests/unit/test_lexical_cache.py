"""The BM25 index is saved beside the Chroma index, keyed by generation, and loaded instead of rebuilt."""

from __future__ import annotations

import json

import pytest

from assistant.ingest.pipeline import ingest
from assistant.retrieval import Corpus
from assistant.store import PassageStore, make_client
from assistant.text import terms

QUERIES = ["When will Xiaomi sell cars in Europe?", "electric vehicle price", "Lei Jun founder", "zzz unknownword"]


@pytest.fixture
def store(workspace, fake_embedder):
    store = PassageStore(make_client(workspace), workspace.collection_name)
    ingest(workspace, store, fake_embedder)
    return store


@pytest.fixture
def builds(count_calls):
    """Counts how often a Corpus is built from the store rather than loaded."""
    return count_calls(Corpus, "_build")


def saved_folder(store: PassageStore):
    return store.lexical_dir / f"{store.name}-{store.generation()}"


def results(corpus: Corpus) -> list:
    return [corpus.lexical_search(terms(q), 5) for q in QUERIES]


def test_an_unchanged_store_loads_the_saved_index_with_identical_results(workspace, store, builds):
    first = Corpus(store)
    assert builds["n"] == 1
    assert store.lexical_dir == workspace.paths.index_dir / "lexical"
    assert (saved_folder(store) / "manifest.json").exists()

    second = Corpus(store)
    assert builds["n"] == 1, "the second Corpus must load, not rebuild"
    assert second.ids == first.ids and second.texts == first.texts and second.metas == first.metas
    assert second.row == first.row
    assert second.sources == first.sources
    assert results(second) == results(first)
    assert any(results(first)), "the queries must find something, or the comparison proves nothing"
    assert second.passage(first.ids[3]) == first.passage(first.ids[3])
    assert second.knows("xiaomi") and not second.knows("zzzunknown")


def test_a_changed_generation_rebuilds_and_removes_the_old_one(workspace, store, fake_embedder, builds):
    Corpus(store)
    old = saved_folder(store)
    (workspace.paths.sources_dir / "extra.md").write_text("# Canteen\n\nThe canteen closes at six on Fridays.\n")
    ingest(workspace, store, fake_embedder)

    corpus = Corpus(store)
    assert builds["n"] == 2
    assert "closes at six" in " ".join(corpus.texts)
    assert corpus.lexical_search(terms("canteen"), 3)[0][0].startswith("extra.md:")
    assert saved_folder(store).exists() and not old.exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "passages.json").write_text('{"ids": ['),  # cut short
        lambda folder: (folder / "manifest.json").unlink(),  # killed before the manifest
        lambda folder: (folder / "data.csc.index.npy").write_bytes(b"\x93NUMPY garbage"),
        lambda folder: (folder / "vocab.index.json").write_text("{}"),  # the right JSON, the wrong size
    ],
    ids=["truncated-json", "no-manifest", "garbled-array", "wrong-vocab"],
)
def test_a_damaged_saved_index_is_ignored_and_replaced(store, builds, damage):
    reference = Corpus(store)
    damage(saved_folder(store))

    rebuilt = Corpus(store)
    assert builds["n"] == 2
    assert rebuilt.ids == reference.ids and results(rebuilt) == results(reference)
    Corpus(store)
    assert builds["n"] == 2, "the rebuilt index is saved again and loads next time"


def test_an_unfinished_save_is_never_read(store, builds):
    Corpus(store)
    folder = saved_folder(store)
    half = folder.parent / ".tmp-0123"
    folder.rename(half)  # what a save killed before its rename leaves behind
    Corpus(store)
    assert builds["n"] == 2


def test_a_change_in_progress_is_not_saved(workspace, store, fake_embedder, builds):
    store.delete_source("xiaomi-overseas-ev-expansion.md")  # a change begun, not yet announced as finished
    assert store.generation().startswith("changing-")
    corpus = Corpus(store)
    assert len(corpus) == 0
    assert not list(store.lexical_dir.glob(f"{store.name}-*"))
    ingest(workspace, store, fake_embedder)  # finishes: a new generation, saved by the next reader
    assert len(Corpus(store)) > 0 and saved_folder(store).exists()


def test_a_saved_index_from_another_generation_is_not_trusted(store, builds):
    Corpus(store)
    folder = saved_folder(store)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["generation"] = "0" * 32
    (folder / "manifest.json").write_text(json.dumps(manifest))
    Corpus(store)
    assert builds["n"] == 2


def test_a_store_without_a_folder_builds_every_time(workspace, fake_embedder, builds):
    import chromadb

    store = PassageStore(chromadb.EphemeralClient(), "passages-ephemeral")
    assert store.lexical_dir is None
    ingest(workspace, store, fake_embedder)
    Corpus(store)
    Corpus(store)
    assert builds["n"] == 2


def test_passages_removed_behind_the_stores_back_are_noticed(store, builds):
    first = Corpus(store).ids[0]
    store.passages.delete(ids=[first])  # no generation change: only the stored count moved
    assert len(Corpus(store)) == 0
    assert builds["n"] == 2
