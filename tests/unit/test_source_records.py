"""Per-source records: what each source's complete version is, read without scanning every passage."""

from __future__ import annotations

import pytest

from assistant.ingest.pipeline import ingest
from assistant.store import PassageStore, make_client


@pytest.fixture
def store(workspace, fake_embedder):
    store = PassageStore(make_client(workspace), workspace.collection_name)
    (workspace.paths.sources_dir / "canteen.md").write_text("# Canteen\n\nThe canteen closes at six on Fridays.\n")
    ingest(workspace, store, fake_embedder)
    return store


@pytest.fixture
def scans(count_calls):
    """Counts the full scans of passage metadata."""
    return count_calls(PassageStore, "_scanned_states")


def test_records_match_the_scan_through_adds_edits_and_removals(workspace, store, fake_embedder, scans):
    sources = workspace.paths.sources_dir
    steps = [
        lambda: (sources / "parking.txt").write_text("Staff park in bay C. Visitors park in bay A."),
        lambda: (sources / "canteen.md").write_text("# Canteen\n\nThe canteen now closes at seven.\n\nIt opens at 8."),
        lambda: (sources / "parking.txt").unlink(),
        lambda: None,  # nothing changed
    ]
    for step in steps:
        step()
        ingest(workspace, store, fake_embedder)
        assert store.states_recorded()
        recorded = store.source_states()
        assert recorded == store._scanned_states()
        assert set(recorded) == {p.name for p in sources.iterdir()}
    assert scans["n"] == len(steps), "only the comparisons above scan; the ingests read the records"


def test_an_index_from_before_the_records_is_scanned_once_then_recorded(workspace, store, fake_embedder, scans):
    expected = store._scanned_states()
    store.meta.delete(where={"kind": "source"})
    store.meta.delete(ids=["states"])
    assert not store.states_recorded()
    scans["n"] = 0
    assert store.source_states() == expected and scans["n"] == 1

    report = ingest(workspace, store, fake_embedder)
    assert not report.changed and scans["n"] == 2
    assert store.states_recorded()
    assert store.source_states() == expected and scans["n"] == 2


def test_a_killed_change_is_scanned_and_its_half_written_version_never_read(workspace, store, fake_embedder, scans):
    before = store.source_states()["canteen.md"]
    # A new version of canteen.md killed after the first of its two passages.
    store._announce_change()
    store.passages.upsert(
        ids=["canteen.md:new"], documents=["The canteen is closed."], embeddings=fake_embedder.embed_documents(["x"]),
        metadatas=[{"source": "canteen.md", "source_hash": "f" * 16, "chunk_count": 2, "title": "Canteen"}],
    )  # fmt: skip
    assert store.generation().startswith("changing-")
    assert not store.states_recorded()
    scans["n"] = 0
    assert store.source_states()["canteen.md"] == before, "the complete version, found by scanning"
    assert scans["n"] == 1

    ingest(workspace, store, fake_embedder)
    assert store.states_recorded()
    assert store.source_states() == store._scanned_states()
    assert store.source_states()["canteen.md"] == before
    assert not store.passages.get(ids=["canteen.md:new"])["ids"], "the half-written version is removed"
    scans["n"] = 0
    store.source_states()
    assert scans["n"] == 0, "and the records are read again"


def test_passages_removed_behind_the_stores_back_are_noticed(store, scans):
    store.passages.delete(
        ids=[store.passages.get(where={"source": "xiaomi-overseas-ev-expansion.md"}, limit=1)["ids"][0]]
    )
    assert store.states_recorded(), "nothing announced the change"
    assert not all(s.complete for s in store.source_states().values()), "the count gives it away"
    assert scans["n"] == 1
