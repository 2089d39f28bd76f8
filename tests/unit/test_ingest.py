"""Ingest: idempotence, change, deletion, bad files skipped by name, offsets that point at the text."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from assistant.config import Settings
from assistant.errors import IndexError_, SourceError
from assistant.ingest.pipeline import ingest, ingest_lock
from assistant.retrieval import Corpus
from assistant.store import PassageStore, make_client, pack_vectors, unpack_vectors


@pytest.fixture
def store(workspace):
    return PassageStore(make_client(workspace), workspace.collection_name)


def run(workspace, store, embedder):
    return ingest(workspace, store, embedder)


def test_first_ingest_adds_then_nothing_changes(workspace, store, fake_embedder):
    first = run(workspace, store, fake_embedder)
    assert (first.added, first.updated, first.removed, first.unchanged) == (1, 0, 0, 0)
    assert first.chunks > 3
    calls = fake_embedder.model.calls
    second = run(workspace, store, fake_embedder)
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 0, 0, 1)
    assert fake_embedder.model.calls == calls, "an unchanged corpus must embed nothing"
    assert second.chunks == first.chunks


def test_changed_file_reembeds_only_itself_and_old_text_is_gone(workspace, store, fake_embedder):
    (workspace.paths.sources_dir / "other.txt").write_text("Zebras migrate across the Serengeti every year.\n")
    run(workspace, store, fake_embedder)
    calls = fake_embedder.model.calls
    (workspace.paths.sources_dir / "other.txt").write_text("Penguins live in the Antarctic.\n")
    report = run(workspace, store, fake_embedder)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    assert fake_embedder.model.calls - calls == 1  # one sentence re-embedded
    texts = " ".join(Corpus(store).texts)
    assert "Penguins" in texts and "Zebras" not in texts


def test_deleted_file_chunks_are_removed(workspace, store, fake_embedder):
    extra = workspace.paths.sources_dir / "other.md"
    extra.write_text("# Other\n\nA second article about trains.\n")
    run(workspace, store, fake_embedder)
    extra.unlink()
    report = run(workspace, store, fake_embedder)
    assert report.removed == 1
    assert {m["source"] for m in Corpus(store).metas} == {"xiaomi-overseas-ev-expansion.md"}


def test_chunk_offsets_index_the_source_file(workspace, store, fake_embedder):
    run(workspace, store, fake_embedder)
    corpus = Corpus(store)
    raw = (workspace.paths.sources_dir / "xiaomi-overseas-ev-expansion.md").read_text(encoding="utf-8")
    for pid in corpus.ids:
        passage = corpus.passage(pid)
        assert raw[passage.start : passage.end] == passage.text
        assert pid == f"{passage.source}:{corpus.metas[corpus.row[pid]]['n']}"
    assert "---" not in " ".join(corpus.texts[:1])[:3], "front matter is not indexed"
    assert corpus.passage(corpus.ids[0]).title == "Xiaomi prepares to take its cars overseas"


def _docx_bytes() -> bytes:
    from docx import Document

    doc = Document()
    doc.core_properties.title = "Word title"
    doc.add_paragraph("The canteen opens at eight in the morning.")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def _pdf_bytes() -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, "The library closes at nine in the evening.")
    pdf.save()
    return buffer.getvalue()


def test_every_supported_format_is_read(workspace, store, fake_embedder):
    folder = workspace.paths.sources_dir
    (folder / "page.html").write_text(
        "<html><head><title>Intranet page</title><script>alert(1)</script></head>"
        "<body><nav>Menu</nav><p>The gym is on floor three.</p></body></html>"
    )
    (folder / "notes.txt").write_text("Parking is free for visitors.\n")
    (folder / "memo.docx").write_bytes(_docx_bytes())
    (folder / "guide.pdf").write_bytes(_pdf_bytes())
    report = run(workspace, store, fake_embedder)
    assert report.added == 5 and not report.skipped
    texts = " ".join(Corpus(store).texts)
    for phrase in ("floor three", "Parking is free", "eight in the morning", "nine in the evening"):
        assert phrase in texts
    assert "alert" not in texts and "Menu" not in texts
    titles = {s.title for s in Corpus(store).sources.values()}
    assert {"Intranet page", "Word title"} <= titles


BAD_FILES = {
    "empty.txt": b"",
    "blank.md": b"   \n\n ",
    "latin1.txt": "Caf\xe9 cr\xe8me".encode("latin-1"),
    "binary.txt": b"\x00\x01\x02\x03binary\x00",
    "corrupt.pdf": b"%PDF-1.4 this is not really a pdf",
    "corrupt.docx": b"PK\x03\x04 not a zip",
    "image.png": b"\x89PNG\r\n",
}


def test_bad_files_are_skipped_with_reasons_and_the_rest_is_indexed(workspace, store, fake_embedder):
    for name, data in BAD_FILES.items():
        (workspace.paths.sources_dir / name).write_bytes(data)
    report = run(workspace, store, fake_embedder)
    skipped = {s["source"]: s["reason"] for s in report.skipped}
    assert set(skipped) == set(BAD_FILES)
    assert "empty" in skipped["empty.txt"]
    assert "UTF-8" in skipped["latin1.txt"]
    assert "binary" in skipped["binary.txt"]
    assert "PDF" in skipped["corrupt.pdf"]
    assert "Word" in skipped["corrupt.docx"]
    assert "unsupported" in skipped["image.png"]
    assert report.added == 1
    assert len(Corpus(store)) == report.chunks


def test_a_file_that_turns_bad_keeps_its_previous_version(workspace, store, fake_embedder):
    note = workspace.paths.sources_dir / "note.txt"
    note.write_text("The office closes at six.\n")
    run(workspace, store, fake_embedder)
    note.write_bytes(b"\xff\xfe broken")
    report = run(workspace, store, fake_embedder)
    assert "previous version kept" in report.skipped[0]["reason"]
    assert "closes at six" in " ".join(Corpus(store).texts)


def test_symlink_outside_sources_is_skipped(workspace, store, fake_embedder, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("Top secret salary data.\n")
    (workspace.paths.sources_dir / "link.txt").symlink_to(secret)
    report = run(workspace, store, fake_embedder)
    assert report.skipped == [{"source": "link.txt", "reason": "symlink points outside the sources folder"}]
    assert "salary" not in " ".join(Corpus(store).texts)


def test_a_symlinked_folder_never_leads_out_of_the_sources(workspace, store, fake_embedder, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "pay.txt").write_text("Top secret salary data.\n")
    inside = workspace.paths.sources_dir / "policies"
    inside.mkdir()
    (inside / "leave.txt").write_text("Staff get 25 days of leave.\n")
    (workspace.paths.sources_dir / "out").symlink_to(outside, target_is_directory=True)
    (workspace.paths.sources_dir / "again").symlink_to(inside, target_is_directory=True)
    report = run(workspace, store, fake_embedder)
    assert report.added == 2  # the article and policies/leave.txt; links to folders are not followed
    texts = " ".join(Corpus(store).texts)
    assert "salary" not in texts and "25 days" in texts


def test_missing_sources_folder_is_a_clear_error(workspace, store, fake_embedder):
    workspace.paths.sources_dir = workspace.paths.sources_dir / "nope"
    with pytest.raises(SourceError, match="sources folder not found"):
        run(workspace, store, fake_embedder)


def test_a_second_ingest_is_refused_while_one_runs(workspace, store, fake_embedder):
    with ingest_lock(workspace, 0), pytest.raises(IndexError_, match="another ingest"):
        ingest(workspace, store, fake_embedder, lock_wait_s=0.1)


def test_incomplete_source_is_invisible_to_readers(workspace, store, fake_embedder):
    run(workspace, store, fake_embedder)
    first = Corpus(store).ids[0]
    store.passages.delete(ids=[first])  # as if an ingest died half-way through this source
    assert len(Corpus(store)) == 0
    report = run(workspace, store, fake_embedder)
    assert report.updated == 1 and len(Corpus(store)) == report.chunks


def test_zip_is_not_mistaken_for_docx(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    from assistant.ingest.loaders import load_source

    with pytest.raises(SourceError, match="Word"):
        load_source(tmp_path / "x.docx", buffer.getvalue())


def test_oversized_file_is_skipped_before_it_is_read(workspace, store, fake_embedder):
    huge = workspace.paths.sources_dir / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(50 * 2**20)  # 50 MB, sparse: costs no disk
    report = run(workspace, store, fake_embedder)
    assert report.skipped == [{"source": "huge.txt", "reason": "larger than the 20 MB limit (chunking.max_file_mb)"}]
    assert report.added == 1


def test_duplicate_file_is_indexed_once(workspace, store, fake_embedder):
    folder = workspace.paths.sources_dir
    (folder / "copy.md").write_bytes((folder / "xiaomi-overseas-ev-expansion.md").read_bytes())
    report = run(workspace, store, fake_embedder)
    assert report.skipped == [{"source": "xiaomi-overseas-ev-expansion.md", "reason": "duplicate of copy.md"}]
    assert {m["source"] for m in Corpus(store).metas} == {"copy.md"}


def test_sentences_are_stored_per_passage_and_slice_its_text(workspace, store, fake_embedder):
    run(workspace, store, fake_embedder)
    corpus = Corpus(store)
    passages = [corpus.passage(pid) for pid in corpus.ids]
    found = store.sentences_of({p.id: p.source_hash for p in passages})
    for passage in passages:
        rows = found[passage.id]
        assert len(rows) == passage.sentence_count > 0
        for start, end, vector in rows:
            text = passage.text[start - passage.start : end - passage.start]
            assert text.strip() and text == text.strip()
            stored = fake_embedder.encode([text])[0]
            assert float(vector @ stored) > 0.9999, "the stored vector is that sentence's own"


def test_packed_vectors_keep_their_direction():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((50, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[3] = 0.0  # a degenerate (empty) sentence must not divide by zero
    restored = unpack_vectors(pack_vectors(vectors), len(vectors))
    cosine = (restored * vectors).sum(axis=1)
    assert np.delete(cosine, 3).min() > 0.9999
    assert len(pack_vectors(vectors)) < 50 * 400 * 4 / 3 + 8, "about one byte per component"


@pytest.mark.parametrize("workers", [0, 3])
def test_parallel_parsing_indexes_the_same_passages_in_the_same_order(workspace, store, fake_embedder, workers):
    folder = workspace.paths.sources_dir
    for i in range(12):
        (folder / f"note-{i:02d}.md").write_text(f"# Note {i}\n\nThe room {i} has {i + 2} chairs. " * (i + 1))
    (folder / "broken.docx").write_bytes(b"not a zip")
    inline = Settings(sources_dir=folder, index_dir=workspace.paths.index_dir / "inline", _env_file=None)
    inline.chunking.parse_workers = 0
    reference = PassageStore(make_client(inline), inline.collection_name)
    expected = ingest(inline, reference, fake_embedder)
    workspace.chunking.parse_workers = workers
    report = ingest(workspace, store, fake_embedder)
    assert (report.added, report.chunks, report.skipped) == (expected.added, expected.chunks, expected.skipped)
    assert Corpus(store).ids == Corpus(reference).ids
    assert Corpus(store).texts == Corpus(reference).texts


def test_a_new_source_skips_the_clean_up_query_and_a_changed_one_runs_it(workspace, store, fake_embedder, monkeypatch):
    deletes: list[dict] = []
    original = store.passages.delete
    monkeypatch.setattr(store.passages, "delete", lambda **kw: deletes.append(kw) or original(**kw))
    run(workspace, store, fake_embedder)
    assert deletes == []
    path = workspace.paths.sources_dir / "xiaomi-overseas-ev-expansion.md"
    path.write_text(path.read_text() + "\n\nA closing line was added.\n")
    run(workspace, store, fake_embedder)
    assert len(deletes) == 1 and "$and" in deletes[0]["where"]


def test_embedder_batches_by_length_but_returns_input_order(fake_embedder):
    texts = [("word " * (i % 17 + 1)) + str(i) for i in range(100)]
    fake_embedder.batch_size = 8
    together = fake_embedder.encode(texts)
    one_by_one = np.stack([fake_embedder.encode([text])[0] for text in texts])
    assert np.allclose(together, one_by_one, atol=1e-6)
