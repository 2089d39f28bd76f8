"""Read source files into plain text plus metadata, one loader per format.

Offsets: for ``.txt`` and ``.md`` the text is the file itself (front matter excluded), and
``body_offset`` says where it starts, so a citation's ``start``/``end`` index the file's own characters.
For ``.html``, ``.pdf`` and ``.docx`` the offsets index the extracted text (``body_offset`` is 0).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.errors import SourceError


@dataclass(slots=True)
class SourceDocument:
    """The usable text of one source file.

    Attributes:
        text: Text the passages are cut from.
        title: Human title (front matter, <title>, document properties, or the file name).
        body_offset: Where ``text`` starts in the decoded file (non-zero after front matter).
        header: The front matter's YAML text and its offset in the file, when there is one.
        metadata: Extra fields such as outlet, author and date.

    """

    text: str
    title: str
    body_offset: int = 0
    header: tuple[str, int] | None = None
    metadata: dict[str, str | list[str]] = field(default_factory=dict)


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
_MD_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


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
    return SourceDocument(text=body, title=title, body_offset=body_offset, metadata=metadata, header=header)


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
    "td",
    "th",
    "caption",
    "figcaption",
]
_IS_BLOCK = " or ".join(f"self::{tag}" for tag in _BLOCK_TAGS)
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
    title = " ".join((root.findtext(".//title") or "").split())
    if not title:
        heading = root.find(".//h1")
        title = " ".join(heading.text_content().split()) if heading is not None else ""
    blocks = [" ".join(el.text_content().split()) for el in root.xpath(f"//*[{_IS_BLOCK}][not(.//*[{_IS_BLOCK}])]")]
    if not any(blocks):
        blocks = [" ".join(root.text_content().split())]
    body_text = "\n".join(b for b in blocks if b)
    if not body_text.strip():
        raise SourceError(f"{path.name}: the HTML page has no visible text")
    return SourceDocument(text=body_text, title=title or _title_from_name(path))


def load_pdf(path: Path, data: bytes) -> SourceDocument:
    """PDF: the text layer of every page; scanned pages without text are not OCRed."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SourceError(f"{path.name}: cannot read this PDF ({exc.__class__.__name__})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise SourceError(f"{path.name}: the PDF has no text layer (scanned images are not read)")
    return SourceDocument(text=text, title=info_title.strip() or _title_from_name(path))


def load_docx(path: Path, data: bytes) -> SourceDocument:
    """Word documents: paragraph text, one paragraph per line; the title from properties or a heading."""
    import zipfile

    from docx import Document

    try:
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise SourceError(f"{path.name}: cannot read this Word file ({exc.__class__.__name__})") from None
    paragraphs = [p for p in document.paragraphs if p.text.strip()]
    text = "\n".join(p.text.strip() for p in paragraphs)
    if not text:
        raise SourceError(f"{path.name}: the Word document has no text")
    title = (document.core_properties.title or "").strip()
    if not title:
        heading = next((p.text for p in paragraphs if p.style.name.lower().startswith(("title", "heading"))), "")
        title = heading.strip()
    return SourceDocument(text=text, title=title or _title_from_name(path))


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
