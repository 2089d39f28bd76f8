"""Cut a source's text into passages on paragraph and sentence boundaries, keeping offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.config import ChunkingSettings
from assistant.ingest.loaders import SourceDocument
from assistant.text import Span, sentences

# Paragraphs first, then lines, then sentence ends, then words: a passage breaks mid-sentence only
# when one sentence is longer than a passage.
_SEPARATORS = [r"\n\s*\n", r"\n", r"(?<=[.!?][\"'”’)])\s+", r"(?<=[.!?])\s+", r"\s+", ""]


@dataclass(slots=True)
class Chunk:
    """One passage of a source.

    Attributes:
        id: ``<source-id>:<n>``, stable across re-ingests of unchanged text.
        text: The passage, verbatim from the source text.
        start: Offset of the passage's first character in the source file's text.
        end: Offset one past its last character.
        sentences: The passage's sentences with offsets in the same coordinates.
        location: Where the passage is, for people: "page 3", "pages 3–4" (PDF) or the heading of the
            section it starts in (Markdown, HTML, Word); empty when the source has neither.

    """

    id: str
    source: str
    n: int
    text: str
    start: int
    end: int
    sentences: list[Span]
    location: str = ""


def make_splitter(settings: ChunkingSettings) -> RecursiveCharacterTextSplitter:
    """The LangChain splitter configured for sentence-aware passages with start offsets."""
    return RecursiveCharacterTextSplitter(
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=True,
    )


_FIELD_LINE = re.compile(r"^[A-Za-z][\w -]*:[ \t]+\S.*$", re.MULTILINE)


def _metadata_card(source_id: str, document: SourceDocument) -> Chunk | None:
    """The front matter as passage 0, so questions about the document itself can be answered and cited.

    Each ``key: value`` line is one sentence ("author: ...", "outlet: ..."); list fields such as
    ``examples`` are not.
    """
    if document.header is None:
        return None
    text, start = document.header
    lines = [Span(m.group().strip(), start + m.start(), start + m.start() + len(m.group().strip()))
             for m in _FIELD_LINE.finditer(text)]  # fmt: skip
    if not lines:
        return None
    return Chunk(id=f"{source_id}:0", source=source_id, n=0, text=text, start=start, end=start + len(text),
                 sentences=lines)  # fmt: skip


def chunk_document(source_id: str, document: SourceDocument, settings: ChunkingSettings) -> list[Chunk]:
    """Split ``document`` into passages whose offsets index the source file's text.

    Args:
        source_id: The source's id (its path relative to the sources folder).
        document: The loaded source.
        settings: Passage size and overlap.

    Returns:
        Passages in reading order, numbered from 0.

    """
    splitter = make_splitter(settings)
    chunks: list[Chunk] = []
    card = _metadata_card(source_id, document)
    if card is not None:
        chunks.append(card)
    for piece in splitter.create_documents([document.text]):
        local_start = piece.metadata["start_index"]
        text = piece.page_content
        if local_start < 0 or document.text[local_start : local_start + len(text)] != text:
            local_start = document.text.find(text)  # splitter lost track; the text is still verbatim
        start = document.body_offset + local_start
        n = len(chunks)
        chunks.append(
            Chunk(
                id=f"{source_id}:{n}",
                source=source_id,
                n=n,
                text=text,
                start=start,
                end=start + len(text),
                sentences=sentences(text, offset=start),
                location=document.location(local_start, local_start + len(text)),
            )
        )
    return chunks
