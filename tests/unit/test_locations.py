"""Loaders keep where each passage is (PDF page, section heading) and PDF lines read as prose."""

from __future__ import annotations

import io
from pathlib import Path

from assistant.config import Settings
from assistant.ingest.chunking import chunk_document
from assistant.ingest.loaders import load_source
from assistant.ingest.pipeline import ingest
from assistant.retrieval import Corpus
from assistant.store import PassageStore, make_client

#: Small passages, so that each test document is cut into several.
SMALL = Settings(_env_file=None, chunking={"chunk_size": 160, "chunk_overlap": 0}).chunking


def pdf_bytes(pages: list[list[tuple[str, str]]]) -> bytes:
    """A PDF whose pages hold lines of ``(font, text)``, drawn top down like a typeset page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for lines in pages:
        y = 760
        for font, text in lines:
            size = 14 if font.endswith("Bold") else 11
            pdf.setFont(font, size)
            pdf.drawString(72, y, text)
            y -= size + 6
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


BODY, BOLD = "Helvetica", "Helvetica-Bold"
POLICY = [
    [
        (BOLD, "1. Scope"),
        (BODY, "This policy covers every member of staff in the finance department, including"),
        (BODY, "the part-time workers and the people of the senior manage-"),
        (BODY, "ment team. Leave requests go to the human resources desk."),
        (BOLD, "2. Annual leave"),
        (BODY, "Staff get twenty-five days of annual leave in each calendar year."),
    ],
    [],  # a blank page keeps its number
    [
        (BODY, "Days not taken by the end of March of the next year expire without pay, unless the head"),
        (BODY, "of the department agreed in writing before the end of the year that they may be kept."),
    ],
]


def test_pdf_headings_stay_lines_and_broken_words_are_joined():
    text = load_source(Path("policy.pdf"), pdf_bytes(POLICY)).text
    lines = text.splitlines()
    assert "1. Scope" in lines and "2. Annual leave" in lines, "a numbered heading is a line of its own"
    assert "senior management team." in text, "a word hyphenated at a line end is joined"
    assert "manage-" not in text and "manage ment" not in text
    assert "the part-time workers" in text, "a hyphen inside a line is a real one"
    wrapped = [line for line in lines if line.startswith("This policy covers")]
    assert wrapped and wrapped[0].endswith("human resources desk."), "a sentence wrapped over lines is one line"


def test_pdf_sentences_do_not_run_into_headings_or_stop_at_line_ends():
    document = load_source(Path("policy.pdf"), pdf_bytes(POLICY))
    sentences = [s.text for chunk in chunk_document("policy.pdf", document, SMALL) for s in chunk.sentences]
    assert any(s.startswith("This policy covers") and s.endswith("senior management team.") for s in sentences)
    assert not any("Scope" in s and "policy" in s for s in sentences), "the heading ran into the next sentence"
    assert not any("desk." in s and "Annual" in s for s in sentences), "a sentence ran into the next heading"


def test_pdf_passages_name_their_page_or_pages():
    document = load_source(Path("policy.pdf"), pdf_bytes(POLICY))
    chunks = chunk_document("policy.pdf", document, SMALL)
    where = {chunk.text[:20]: chunk.location for chunk in chunks}
    assert where["1. Scope"] == "page 1"
    assert where["Days not taken by th"] == "page 3", "page numbers count pages without text"
    spanning = chunk_document("policy.pdf", document, Settings(_env_file=None).chunking)
    assert spanning[-1].location == "pages 1–3", "a passage over a page break names both pages"


def test_a_number_inside_a_wrapped_sentence_is_no_heading():
    page = [
        (BODY, "Requests for unpaid leave are handled as described in the rules of section"),
        (BODY, "3.2 of the staff policy, and the department hired"),
        (BODY, "20 staff members in March."),
    ]
    text = load_source(Path("wrapped.pdf"), pdf_bytes([page])).text
    assert text == (
        "Requests for unpaid leave are handled as described in the rules of section 3.2 of the staff policy, "
        "and the department hired 20 staff members in March."
    )


def test_a_short_last_line_ends_its_paragraph():
    page = [
        (BODY, "Parking permits are issued at the facilities desk in building C on weekdays."),
        (BODY, "Bring your badge."),
        (BODY, "Visitors park free for two hours in the public garage."),
    ]
    lines = load_source(Path("parking.pdf"), pdf_bytes([page])).text.splitlines()
    assert lines[-1] == "Visitors park free for two hours in the public garage."


MARKDOWN = """---
title: Staff handbook
location: Head office
---
# Staff handbook

The handbook applies to everyone employed by the company, from the first day of work.

## Parking

Permits cost twelve euros per month and are issued by the facilities desk in building C.
Visitors park free of charge for two hours in the public garage on Mill Street.

```
# a comment in code, not a heading
```

Sick pay
--------

Sick pay is the full salary for the first six weeks of an illness, then seventy percent of it for
the next twelve weeks; a doctor's note is needed from the third day of absence onwards.
"""


def test_markdown_passages_name_the_section_they_start_in():
    document = load_source(Path("handbook.md"), MARKDOWN.encode())
    assert [heading for _, heading in document.headings] == ["Staff handbook", "Parking", "Sick pay"]
    chunks = chunk_document("handbook.md", document, SMALL)
    where = {chunk.text[:20]: chunk.location for chunk in chunks}
    assert where["# Staff handbook\n\nTh"] == "Staff handbook"
    assert where["Permits cost twelve "] == "Parking"
    assert where["Visitors park free o"] == "Parking", "the nearest heading above the passage"
    assert where["Sick pay is the full"] == "Sick pay", "a setext heading; '#' in a code block is none"
    assert chunks[0].location == "", "the front-matter card is no section"


def test_html_and_word_passages_name_their_heading():
    html = (
        "<html><head><title>Intranet</title></head><body><h1>Guide</h1><p>Welcome to the intranet guide.</p>"
        "<h2>Canteen</h2><p>The canteen opens at eight in the morning and closes at three in the afternoon; "
        "on Fridays it closes at two, and during the summer holidays it serves cold meals only.</p></body></html>"
    )
    chunks = chunk_document("guide.html", load_source(Path("guide.html"), html.encode()), SMALL)
    assert any(c.location == "Canteen" and "canteen opens" in c.text for c in chunks)

    from docx import Document

    doc = Document()
    doc.add_heading("Travel", level=1)
    doc.add_paragraph("Trains are booked through the travel desk. " * 4)
    doc.add_heading("Expenses", level=2)
    doc.add_paragraph("Receipts are submitted within thirty days of the trip.")
    buffer = io.BytesIO()
    doc.save(buffer)
    chunks = chunk_document("travel.docx", load_source(Path("travel.docx"), buffer.getvalue()), SMALL)
    assert any(c.location == "Expenses" and "thirty days" in c.text for c in chunks)
    assert chunks[0].location == "Travel"


def test_a_table_row_is_one_line_with_its_cells_apart_in_html_and_word():
    html = (
        "<html><body><h2>Rates</h2><table><tr><th>Vehicle</th><th>Rate</th></tr>"
        "<tr><td>Car</td><td>45p per mile</td></tr></table><p>Claim monthly.</p></body></html>"
    )
    text = load_source(Path("rates.html"), html.encode()).text
    assert text == "Rates\nVehicle | Rate\nCar | 45p per mile\nClaim monthly."

    from docx import Document

    doc = Document()
    doc.add_paragraph("Limits per night:")
    table = doc.add_table(rows=2, cols=3)
    for cell, value in zip(table.rows[0].cells, ("City", "Hotel", "Note"), strict=True):
        cell.text = value
    table.cell(1, 0).text = "London"
    table.cell(1, 1).text = "£190"
    table.cell(1, 1).merge(table.cell(1, 2))  # a merged cell is read once
    doc.add_paragraph("Book through the travel desk.")
    buffer = io.BytesIO()
    doc.save(buffer)
    text = load_source(Path("limits.docx"), buffer.getvalue()).text
    assert text == "Limits per night:\nCity | Hotel | Note\nLondon | £190\nBook through the travel desk."


def test_the_location_is_stored_and_read_back_as_passage_metadata(workspace, fake_embedder):
    folder = workspace.paths.sources_dir
    (folder / "policy.pdf").write_bytes(pdf_bytes(POLICY))
    (folder / "handbook.md").write_text(MARKDOWN, encoding="utf-8")
    workspace.chunking.chunk_size, workspace.chunking.chunk_overlap = SMALL.chunk_size, SMALL.chunk_overlap
    ingest(workspace, PassageStore(make_client(workspace), workspace.collection_name), fake_embedder)
    corpus = Corpus(PassageStore(make_client(workspace), workspace.collection_name))
    expected = {
        chunk.id: chunk.location
        for name in ("policy.pdf", "handbook.md")
        for chunk in chunk_document(name, load_source(folder / name, (folder / name).read_bytes()), SMALL)
    }
    stored = {pid: corpus.passage(pid).metadata["location"] for pid in corpus.ids if pid in expected}
    assert stored == expected
    assert {"page 1", "page 3", "Parking", "Sick pay"} <= set(stored.values())
    assert stored["handbook.md:0"] == "", "a front-matter field called location names no passage"


def test_a_passage_without_page_or_heading_is_named_by_its_paragraph():
    text = (
        "Canteen news from the facilities team, written for everyone who works in the building.\n\n"
        + "The canteen opens at eight in the morning for breakfast and hot drinks.\n" * 3
        + "\nParking is free for visitors who register at the front desk on arrival."
    )
    chunks = chunk_document("news.txt", load_source(Path("news.txt"), text.encode()), SMALL)
    where = {c.text[:12]: c.location for c in chunks}
    assert where["Canteen news"] == "paragraph 1"
    assert where["The canteen "] == "paragraph 2", "lines inside a paragraph are one paragraph"
    assert where["Parking is f"] == "paragraph 3"
