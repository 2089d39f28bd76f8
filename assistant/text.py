"""Text utilities shared by ingest, lexical retrieval and answering: terms, sentences, numbers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

# A compact English stopword list: function words only, so content words always count as evidence.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "also",
        "s",
        "t",
        "don",
        "ll",
        "re",
        "ve",
        "d",
        "m",
        "o",
        "y",
        "shall",
        "may",
        "might",
        "must",
        "ought",
        "per",
        "via",
        "whose",
        "upon",
        "within",
        "without",
        "among",
        "amongst",
        "across",
        "toward",
        "towards",
        "onto",
        "whether",
        "either",
        "neither",
        "yet",
        "however",
        "thus",
        "therefore",
        "hence",
        "according",
        "said",
        "says",
        "tell",
        "told",
        "know",
        "give",
        "gives",
        "given",
        "make",
        "makes",
        "made",
        "get",
        "got",
        "let",
        "lets",
        "one",
        "ones",
    ]
)

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


# Abbreviations written both ways in news text (currencies, units), folded to one term.
ALIASES = {
    "usd": "dollar",
    "dollars": "dollar",
    "eur": "euro",
    "euros": "euro",
    "rmb": "yuan",
    "cny": "yuan",
    "percent": "%",
    "pct": "%",
    "evs": "ev",
    "cars": "car",
    "automobiles": "car",
}


# Irregular English verb forms the stemmer cannot join to their base form.
_IRREGULAR = {
    form: base
    for base, forms in {
        "write": "wrote written",
        "sell": "sold",
        "hold": "held",
        "buy": "bought",
        "make": "made",
        "build": "built",
        "bring": "brought",
        "think": "thought",
        "teach": "taught",
        "seek": "sought",
        "spend": "spent",
        "send": "sent",
        "lead": "led",
        "leave": "left",
        "lose": "lost",
        "win": "won",
        "begin": "began begun",
        "grow": "grew grown",
        "rise": "rose risen",
        "fall": "fell fallen",
        "give": "gave given",
        "take": "took taken",
        "see": "saw seen",
        "go": "went gone",
        "come": "came",
        "become": "became",
        "speak": "spoke spoken",
        "choose": "chose chosen",
        "drive": "drove driven",
        "show": "shown",
        "know": "knew known",
        "tell": "told",
        "say": "said",
        "pay": "paid",
        "meet": "met",
        "find": "found",
        "run": "ran",
        "get": "got gotten",
        "keep": "kept",
        "stand": "stood",
        "understand": "understood",
        "fly": "flew flown",
        "draw": "drew drawn",
        "eat": "ate eaten",
    }.items()
    for form in forms.split()
}


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

_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
        "corp",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "u.s",
        "u.k",
        "no",
        "fig",
        "approx",
        "est",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*\s+|\n+")


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
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()) or next_char.islower():
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

_NUMBER_WORDS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "dozen",
    "hundred",
    "thousand",
    "million",
    "billion",
    "trillion",
    "half",
    "quarter",
]
NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
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
