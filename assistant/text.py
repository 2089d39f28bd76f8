"""Text utilities shared by ingest, lexical retrieval and answering: terms, sentences, numbers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import snowballstemmer
import yaml


def _lexicon() -> dict:
    """The word lists in ``assistant/data/lexicon.yaml`` (data, not code; read once, on import)."""
    return yaml.safe_load(resources.files("assistant.data").joinpath("lexicon.yaml").read_text(encoding="utf-8"))


_LEXICON = _lexicon()

# Function words only, so content words always count as evidence.
STOPWORDS = frozenset(_LEXICON["stopwords"])

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9'’\-]*[A-Za-z0-9]|[A-Za-z]|\d+(?:[.,]\d+)*%?")
_STEMMER = snowballstemmer.stemmer("english")


def normalize(text: str) -> str:
    """Fold compatibility characters and curly quotes so matching ignores typography."""
    text = unicodedata.normalize("NFKC", text)
    return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball-stem one lowercase word; numbers are kept without thousands separators."""
    if word[0].isdigit():
        return word.replace(",", "")
    return _STEMMER.stemWord(word)


# Spellings written two ways (currencies, units), folded to one term.
ALIASES: dict[str, str] = _LEXICON["aliases"]


# Irregular English verb forms the stemmer cannot join to their base form.
_IRREGULAR = {form: base for base, forms in _LEXICON["irregular_verbs"].items() for form in forms.split()}


_WORD_PARTS = re.compile(r"['\-]")


def _split_word(raw: str) -> list[str]:
    word = raw.lower().replace("’", "'")
    word = ALIASES.get(word, _IRREGULAR.get(word, word))
    if word.endswith("'s"):
        word = word[:-2]
    # Hyphenated compounds count as their parts and as the whole ("after-sales" -> after, sales).
    parts = [p for p in _WORD_PARTS.split(word) if p]
    return parts if len(parts) <= 1 else [*parts, word.replace("'", "")]


@lru_cache(maxsize=262144)
def _word_terms(raw: str, keep_stopwords: bool) -> tuple[str, ...]:
    # Cached per surface form: the corpus-wide BM25 build calls this for every word of every passage.
    return tuple(stem(word) for word in _split_word(raw) if keep_stopwords or word not in STOPWORDS)


def terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """The stemmed content terms of ``text``, in order, stopwords dropped unless asked to keep them.

    Args:
        text: Any text.
        keep_stopwords: Keep function words (used when order or phrasing matters).

    Returns:
        Lowercase stems such as ``["xiaomi", "ship", "two", "su7", "vehicl"]``.

    """
    out: list[str] = []
    for match in _TOKEN.finditer(normalize(text)):
        out.extend(_word_terms(match.group(), keep_stopwords))
    return out


# --- sentences -------------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(_LEXICON["abbreviations"])
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*\s+|\n+")
_NUMBERING = re.compile(r"(?:\d{1,3}\.)+|[A-Za-z]\.|[ivxIVX]{1,4}\.")


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of text with its character offsets in the text it was cut from."""

    text: str
    start: int
    end: int


def sentences(text: str, offset: int = 0) -> list[Span]:
    """Cut ``text`` into sentences, keeping each one's offsets (shifted by ``offset``).

    Line breaks always end a sentence, so headings and list items stand alone. A full stop after a
    known abbreviation or a single capital letter does not end a sentence.
    """
    spans: list[Span] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if "\n" not in match.group():
            before = text[start : match.start()].rsplit(None, 1)
            last = before[-1].lower().rstrip(".") if before else ""
            next_char = text[end : end + 1]
            numbering = _NUMBERING.fullmatch(text[start : match.start() + 1].strip())  # "1." or "2.3." heads a line
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()) or next_char.islower() or numbering:
                continue
        _append_span(spans, text, start, end, offset)
        start = end
    _append_span(spans, text, start, len(text), offset)
    return spans


def _append_span(spans: list[Span], text: str, start: int, end: int, offset: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    lead = len(piece) - len(piece.lstrip())
    s = start + lead
    spans.append(Span(stripped, offset + s, offset + s + len(stripped)))


# --- answer-type evidence --------------------------------------------------------------------------

_NUMBER_WORDS: list[str] = _LEXICON["number_words"]
NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def _cue_pattern(words: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b",
                      re.IGNORECASE)  # fmt: skip


#: A reason is given ("because", "due to", "so that").
CAUSAL = _cue_pattern(_LEXICON["causal_cues"])
#: A span of time: a number (or "every"/"a") before a unit of time, or "within …".
TIME_SPAN = re.compile(
    r"\b(?:within|every|each|per|a|an|\d+(?:[.,]\d+)?|"
    + "|".join(_NUMBER_WORDS)
    + r")\s+(?:\w+\s+)?(?:"
    + "|".join(_LEXICON["time_units"])
    + r")\b|\bwithin\b",
    re.IGNORECASE,
)
#: A rule's condition or limit ("only if", "unless", "at most").
CONDITION = _cue_pattern(_LEXICON["condition_cues"])

YEAR_OR_DATE = re.compile(
    r"\b(?:1[89]\d\d|2[01]\d\d)\b|\b(?:January|February|March|April|May|June|July|August|September|"
    r"October|November|December|Q[1-4]|spring|summer|autumn|fall|winter|today|yesterday|tomorrow|"
    r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|weekdays?|weekends?|noon|midnight|"
    r"(?:every|each|last|next|this) (?:year|month|week|day|morning|evening)|\d{1,2}(?::\d\d)? ?[ap]\.?m\.?)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’\-]*[A-Za-z0-9]|\b\d+[A-Za-z]+\w*")


_CLAUSE_START = re.compile(r"(?:^|[:;(\"“]|\n\s*(?:[-–—*•]|\d+[.)])?)\s*$")


def proper_names(text: str) -> set[str]:
    """Capitalised words (and alphanumeric names such as "36Kr").

    Not names: a sentence's or clause's first word ("are: Not having ...", a list item) and capitalised
    stopwords.
    """
    names = set()
    for match in _CAPITALISED.finditer(text):
        word = match.group().lower().replace("’", "'").removesuffix("'s")
        if word in STOPWORDS or _CLAUSE_START.search(text, 0, match.start()):
            continue
        names.add(word)
    return names


_FIELD_LINE = re.compile(r"^[A-Za-z][\w \-]{0,30}:\s+\S")


def is_heading(text: str) -> bool:
    """A short line with no closing punctuation reads as a heading, not as a statement.

    A ``field: value`` line (front matter, a metadata card, "Note: ...") states something, so it is not one.
    """
    stripped = text.rstrip()
    return len(text) < 80 and not stripped.endswith((".", "!", "?", ":", '"', "”")) and not _FIELD_LINE.match(stripped)
