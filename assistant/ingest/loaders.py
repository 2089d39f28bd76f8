"""Read source files into plain text plus metadata, one loader per format.

Offsets: for ``.txt`` and ``.md`` the text is the file itself (front matter excluded), and
``body_offset`` says where it starts, so a citation's ``start``/``end`` index the file's own characters.
For ``.html``, ``.pdf`` and ``.docx`` the offsets index the extracted text (``body_offset`` is 0).

Each loader also says where things are, for people: the offset where each PDF page starts, and the
section headings of Markdown, HTML and Word files, so a passage can be cited as "page 3" or by its section.
"""

from __future__ import annotations

import bisect
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.errors import SourceError

_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")


@dataclass(slots=True)
class SourceDocument:
    """The usable text of one source file.

    Attributes:
        text: Text the passages are cut from.
        title: Human title (front matter, <title>, document properties, or the file name).
        body_offset: Where ``text`` starts in the decoded file (non-zero after front matter).
        header: The front matter's YAML text and its offset in the file, when there is one.
        metadata: Extra fields such as outlet, author and date.
        pages: ``(offset in text, page number)`` where each page with text starts (PDF only).
        headings: ``(offset in text, heading)`` of each section heading, in reading order.

    """

    text: str
    title: str
    body_offset: int = 0
    header: tuple[str, int] | None = None
    metadata: dict[str, str | list[str]] = field(default_factory=dict)
    pages: list[tuple[int, int]] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)
    _paragraph_starts: list[int] = field(default_factory=list, init=False, repr=False)

    def location(self, start: int, end: int) -> str:
        """Where ``text[start:end]`` is, for people: "page 3", "pages 3–4", its section's heading, or "paragraph 4".

        The section is the one the passage starts in: the nearest heading at or above ``start``. A passage
        with neither pages nor a heading above it is named by the paragraph it starts in.
        """
        if self.pages:
            offsets = [offset for offset, _ in self.pages]
            first = self.pages[max(0, bisect.bisect_right(offsets, start) - 1)][1]
            last = self.pages[max(0, bisect.bisect_right(offsets, max(start, end - 1)) - 1)][1]
            return f"page {first}" if first == last else f"pages {first}–{last}"
        i = bisect.bisect_right([offset for offset, _ in self.headings], start) - 1
        return self.headings[i][1] if i >= 0 else f"paragraph {self.paragraph(start)}"

    def paragraph(self, at: int) -> int:
        """The number of the paragraph ``text[at]`` is in (blank-line paragraphs, else lines), from 1."""
        if not self._paragraph_starts:  # found once per document: a long file has many passages
            gap = _BLANK_LINE if _BLANK_LINE.search(self.text) else _LINE_BREAK
            self._paragraph_starts = [0, *(m.end() for m in gap.finditer(self.text))]
        return bisect.bisect_right(self._paragraph_starts, at)


def _decode(data: bytes, name: str) -> str:
    if not data.strip():
        raise SourceError(f"{name}: the file is empty")
    if b"\x00" in data[:8192]:
        raise SourceError(f"{name}: looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{name}: not valid UTF-8 (byte {exc.start}); save it as UTF-8") from None
    if not text.strip():
        raise SourceError(f"{name}: the file holds only whitespace")
    return text


def _title_from_name(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip().capitalize() or path.name


def load_text(path: Path, data: bytes) -> SourceDocument:
    """Plain text; the first line becomes the title only if it reads like one."""
    text = _decode(data, path.name)
    return SourceDocument(text=text, title=_title_from_name(path))


def _meta_value(value: object) -> str | list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    return str(value)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
#: Between the cells of an HTML or Word table row, as in a Markdown table (the `table_row` feature sees it).
TABLE_CELL_SEPARATOR = " | "
_MD_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
# CommonMark's ATX ("## Leave") and setext (a line underlined with === or ---) headings, and code fences.
_MD_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_MD_SETEXT_LINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(?:```|~~~)")
_MD_NOT_PARAGRAPH = re.compile(r"^ {0,3}(?:[-*+][ \t]|\d{1,9}[.)][ \t]|>|\|)")  # list items, quotes, tables
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"\*\*|__|`|(?<!\w)[*_]|[*_](?!\w)")


def _markdown_headings(body: str) -> list[tuple[int, str]]:
    """``(offset, heading)`` of the ATX and setext headings of a Markdown body, outside code fences."""
    headings: list[tuple[int, str]] = []
    offset, in_fence = 0, False
    previous: tuple[int, str] | None = None  # the last line, while it could be a setext heading's text
    for line in body.splitlines(keepends=True):
        content = line.rstrip("\r\n")
        if _MD_FENCE.match(content):
            in_fence, previous = not in_fence, None
        elif not in_fence:
            atx = _MD_ATX.match(content)
            if atx:
                headings.append((offset, atx.group(1)))
                previous = None
            elif previous is not None and _MD_SETEXT_LINE.match(content):
                headings.append(previous)
                previous = None
            elif content.strip() and not _MD_NOT_PARAGRAPH.match(content):
                previous = (offset + len(content) - len(content.lstrip()), content.strip())
            else:
                previous = None
        offset += len(line)
    cleaned = [(at, " ".join(_MD_EMPHASIS.sub("", _MD_LINK.sub(r"\1", text)).split())) for at, text in headings]
    return [(at, text) for at, text in cleaned if text]


def load_markdown(path: Path, data: bytes) -> SourceDocument:
    """Markdown with optional YAML front matter (title, outlet, author, date, ...)."""
    raw = _decode(data, path.name)
    metadata: dict[str, str | list[str]] = {}
    body_offset = 0
    match = _FRONT_MATTER.match(raw)
    if match:
        try:
            parsed = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise SourceError(f"{path.name}: front matter is not valid YAML ({exc})") from None
        if isinstance(parsed, dict):
            metadata = {str(k): _meta_value(v) for k, v in parsed.items() if v is not None}
        body_offset = match.end()
    body = raw[body_offset:]
    if not body.strip():
        raise SourceError(f"{path.name}: the file has front matter but no text")
    heading = _MD_HEADING.search(body)
    title = str(metadata.pop("title", "") or "") or (heading.group(1) if heading else _title_from_name(path))
    header = (match.group(1), match.start(1)) if match else None
    return SourceDocument(text=body, title=title, body_offset=body_offset, metadata=metadata, header=header,
                          headings=_markdown_headings(body))  # fmt: skip


_BLOCK_TAGS = [
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "pre",
    "blockquote",
    "dt",
    "dd",
    "tr",
    "caption",
    "figcaption",
]
_IS_BLOCK = " or ".join(f"self::{tag}" for tag in _BLOCK_TAGS)
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def load_html(path: Path, data: bytes) -> SourceDocument:
    """HTML: visible text of the innermost block elements, one per line; scripts, styles, navigation dropped."""
    from lxml import etree
    from lxml import html as lxml_html

    text = _XML_DECLARATION.sub("", _decode(data, path.name))
    try:
        root = lxml_html.fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise SourceError(f"{path.name}: cannot parse this HTML ({exc})") from None
    for tag in root.xpath("//script|//style|//noscript|//nav|//header|//footer|//template"):
        tag.drop_tree()
    for row in root.iter("tr"):  # a table row is one line, its cells apart: "Hotel | Itemised bill | £140"
        cells = row.xpath("./td|./th")
        for cell in cells[:-1]:
            cell.tail = TABLE_CELL_SEPARATOR + (cell.tail or "")
    title = " ".join((root.findtext(".//title") or "").split())
    if not title:
        heading = root.find(".//h1")
        title = " ".join(heading.text_content().split()) if heading is not None else ""
    blocks = [(" ".join(el.text_content().split()), el.tag in _HTML_HEADINGS)
              for el in root.xpath(f"//*[{_IS_BLOCK}][not(.//*[{_IS_BLOCK}])]")]  # fmt: skip
    if not any(text for text, _ in blocks):
        blocks = [(" ".join(root.text_content().split()), False)]
    body_text, headings = _lines_with_headings(blocks)
    if not body_text.strip():
        raise SourceError(f"{path.name}: the HTML page has no visible text")
    return SourceDocument(text=body_text, title=title or _title_from_name(path), headings=headings)


def _lines_with_headings(blocks: list[tuple[str, bool]]) -> tuple[str, list[tuple[int, str]]]:
    """Join ``(text, is_heading)`` blocks one per line; return the text and where its headings start."""
    lines: list[str] = []
    headings: list[tuple[int, str]] = []
    offset = 0
    for text, is_heading in blocks:
        if not text:
            continue
        if is_heading:
            headings.append((offset, text))
        lines.append(text)
        offset += len(text) + 1
    return "\n".join(lines), headings


# PDF lines: a list item or numbered heading ("3.", "2.1", "a)", "•") starts a line of its own, unless a
# lower-case word follows the number ("3.2 of the policy", "20 staff" continue a wrapped sentence); a word
# broken at a line end with a hyphen (ASCII, soft or Unicode hyphen) and continued in lower case is joined.
_PDF_NUMBER = r"(?:\(?\d{1,3}[.)]|\d{1,3}(?:\.\d{1,3})+\.?|\(?[A-Za-z][.)]|[IVXLC]{1,5}[.)])\s+(?![a-z])"
_PDF_LINE_START = re.compile(rf"^(?:[-–—•▪◦·*]\s|{_PDF_NUMBER}\S)")
_PDF_NUMBERED_HEADING = re.compile(rf"^{_PDF_NUMBER}[^\W\d_]")
_PDF_BROKEN_WORD = re.compile(r"(?<=[^\W\d_])[-\u00ad\u2010]$")
#: A line at least this share of the page's longest line is taken to be wrapped, not ended.
_PDF_WRAPPED = 0.6


def _reflow_pdf_page(raw: str) -> str:
    """One page's extracted text with wrapped lines joined and headings and list items kept on their own.

    pypdf gives one line per printed line, and a line break ends a sentence for the splitter, so a sentence
    wrapped over two lines would be cut in two and a hyphenated word ("manage-/ment") split. A line is joined
    to the one before when that one is wrapped (at least 60% as long as the page's longest line, or ending in a
    broken word) and this one does not start a list item or a numbered heading; short lines such as headings
    stay lines, and a numbered heading also gets a blank line before it, so passages break at sections.
    A compound broken exactly at its own hyphen ("part-/time") loses the hyphen: the two cannot be told apart.
    """
    lines = [" ".join(line.split()) for line in raw.splitlines()]
    width = max((len(line) for line in lines), default=0)
    out: list[str] = []
    previous = ""
    for line in lines:
        if not line:
            if out and out[-1]:
                out.append("")
            previous = ""
            continue
        starts_block = bool(_PDF_LINE_START.match(line))
        broken = bool(previous) and _PDF_BROKEN_WORD.search(previous) is not None and line[0].islower()
        if broken:
            out[-1] = out[-1][:-1] + line
        elif previous and not starts_block and len(previous) >= _PDF_WRAPPED * width:
            out[-1] = f"{out[-1]} {line}"
        else:
            if out and out[-1] and _PDF_NUMBERED_HEADING.match(line) and len(line) < _PDF_WRAPPED * width:
                out.append("")
            out.append(line)
        previous = line
    return "\n".join(out).strip()


def load_pdf(path: Path, data: bytes) -> SourceDocument:
    """PDF: the text layer of every page; scanned pages without text are not OCRed."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [_reflow_pdf_page(page.extract_text() or "") for page in reader.pages]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SourceError(f"{path.name}: cannot read this PDF ({exc.__class__.__name__})") from None
    parts: list[str] = []
    starts: list[tuple[int, int]] = []
    offset = 0
    for number, page in enumerate(pages, start=1):
        if page:  # pages without text (scans, blank pages) keep their numbers but add nothing
            starts.append((offset, number))
            parts.append(page)
            offset += len(page) + 2
    text = "\n\n".join(parts)
    if not text:
        raise SourceError(f"{path.name}: the PDF has no text layer (scanned images are not read)")
    return SourceDocument(text=text, title=info_title.strip() or _title_from_name(path), pages=starts)


def load_docx(path: Path, data: bytes) -> SourceDocument:
    """Word documents: one paragraph or table row per line; the title from properties or a heading."""
    import zipfile

    from docx import Document
    from docx.table import Table

    try:
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise SourceError(f"{path.name}: cannot read this Word file ({exc.__class__.__name__})") from None
    blocks: list[tuple[str, bool]] = []
    for item in document.iter_inner_content():  # paragraphs and tables, in document order
        if isinstance(item, Table):
            blocks += [(row, False) for row in _docx_table_rows(item)]
        elif item.text.strip():
            blocks.append((item.text.strip(), _is_docx_heading(item)))
    text, headings = _lines_with_headings(blocks)
    if not text:
        raise SourceError(f"{path.name}: the Word document has no text")
    title = (document.core_properties.title or "").strip()
    if not title:
        title = next((block for block, heading in blocks if heading), "")
    return SourceDocument(text=text, title=title or _title_from_name(path), headings=headings)


def _docx_table_rows(table: object) -> list[str]:
    """Each row's cells joined like an HTML or Markdown row; a merged cell (repeated by python-docx) once."""
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            value = " ".join(cell.text.split())
            if value and id(cell._tc) not in seen:
                cells.append(value)
            seen.add(id(cell._tc))
        if cells:
            rows.append(TABLE_CELL_SEPARATOR.join(cells))
    return rows


def _is_docx_heading(paragraph: object) -> bool:
    style = getattr(paragraph, "style", None)
    name = (getattr(style, "name", None) or "").lower()
    return name.startswith(("title", "heading"))


LOADERS: dict[str, Callable[[Path, bytes], SourceDocument]] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}


def load_source(path: Path, data: bytes) -> SourceDocument:
    """Load one file's text with the loader for its extension.

    Raises:
        SourceError: The format is unsupported, or the file is empty, binary, not UTF-8 or corrupt.

    """
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        supported = " ".join(sorted(LOADERS))
        raise SourceError(f"{path.name}: unsupported file type {path.suffix or '(none)'}; use {supported}")
    return loader(path, data)
