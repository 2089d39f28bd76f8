"""Understanding a question: its weighted terms, the kind of answer it expects, its follow-up context."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources

from assistant.errors import InputError
from assistant.text import NUMBER, STOPWORDS, proper_names, terms

# Words that frame a question rather than name what it is about.
_FRAMING = frozenset(
    terms("many much name mention mentioned describe explain happen happened kind type sort", keep_stopwords=True)
)


class QuestionForm(StrEnum):
    """The shape of answer the question asks for."""

    FACT = "fact"  # one fact: a sentence, the answering span highlighted
    YES_NO = "yes_no"  # "Can I ...?": the sentence stating the rule or its condition
    EXPLAIN = "explain"  # why / how / steps / summarise / compare: several points from different passages
    LIST = "list"  # "which roles ...", "what are ...": several items


class AnswerType(StrEnum):
    """What a real answer must contain beyond the words of the question."""

    NUMBER = "number"
    DATE = "date"
    PERSON = "person"
    PLACE = "place"
    OTHER = "other"


_TYPE_RULES: list[tuple[AnswerType, re.Pattern[str]]] = [
    (
        AnswerType.NUMBER,
        re.compile(
            r"\bhow (many|much|big|large|long|far|fast|old|high|tall|heavy)\b|"
            r"\b(what|which)( is| was| are| were)?( the)? (percentage|percent|share|proportion|number|amount|"
            r"price|cost|fraction|total|figure|count|revenue|rate)\b|"
            r"\b(cost|costs|priced|price)\b",
            re.IGNORECASE,
        ),
    ),
    (
        AnswerType.DATE,
        re.compile(
            r"^\W*when\b|\b(what|which) (year|month|date|day|quarter|time)\b|\bby when\b|\bsince when\b|"
            r"\bin (what|which) (year|month)\b",
            re.IGNORECASE,
        ),
    ),
    (
        AnswerType.PERSON,
        re.compile(
            r"^\W*(who|whom)\b|\bwho\b(?! *(are|is) the (target|customers?))|"
            r"\b(which|what) (executive|person|people|founder|president|ceo|chairman|analyst|author|writer|"
            r"journalist|official|leader|manager|spokesperson|insider|expert)s?\b",
            re.IGNORECASE,
        ),
    ),
    (
        AnswerType.PLACE,
        re.compile(
            r"^\W*where\b|\bwhere\b|\b(which|what) (country|countries|city|cities|region|regions|continent|"
            r"nation|nations|district|street|location|place)\b|\bin (which|what) (country|city)\b",
            re.IGNORECASE,
        ),
    ),
]

_ASKED_NOUNS = re.compile(r"\b(?:which|what)\s+((?:[\w-]+\s+){0,3}[\w-]+)", re.IGNORECASE)
_LIST_CUE = re.compile(r"\b(list|name all|what are|which are|who are)\b", re.IGNORECASE)
_NOT_PLURAL = frozenset(
    ["is", "was", "has", "does", "as", "its", "this", "us", "plus", "bus", "gas", "news", "series", "always", "perhaps"]
)


def wants_several(question: str) -> bool:
    """Whether the question asks for several things ("which roles ...", "what are ...")."""
    if _LIST_CUE.search(question):
        return True
    for match in _ASKED_NOUNS.finditer(question):
        for word in match.group(1).lower().split():
            if word in _NOT_PLURAL or word in STOPWORDS:
                break
            if word.endswith("s") and not word.endswith("ss"):
                return True
    return False


_YES_NO = re.compile(
    r"^\W*(can|could|do|does|did|is|are|was|were|should|may|must|will|would|am|have|has|shall|if)\b", re.IGNORECASE
)
_EXPLAIN = re.compile(
    r"^\W*why\b|^\W*how\b(?! (many|much|long|far|old|big|large|often|soon|fast|high|tall|heavy|early|late)\b)|"
    r"\b(steps?|process|procedure|explain|describe|summari[sz]e|summary|compare|difference|overview|what happens)\b",
    re.IGNORECASE,
)


_ASKS_REASON = re.compile(r"^\W*why\b|\bhow come\b|\b(what|which) (is|was|are|were) the (reason|cause|purpose)s?\b|"
                          r"\bwhat for\b", re.IGNORECASE)  # fmt: skip
_ASKS_TIME_SPAN = re.compile(
    r"\bhow (long|late|soon|often|early|frequently|many (days|hours|weeks|months|minutes|years))\b|"
    r"\b(deadline|time limit|notice period|how much notice|by when|until when)\b",
    re.IGNORECASE,
)


def asks_reason(question: str) -> bool:
    """Whether the question asks why."""
    return bool(_ASKS_REASON.search(question))


def asks_time_span(question: str) -> bool:
    """Whether the question asks how long, how late or how often (the answer is a span of time)."""
    return bool(_ASKS_TIME_SPAN.search(question))


def question_form(question: str) -> QuestionForm:
    """Whether a question asks for one fact, a yes/no rule, an explanation or a list."""
    if _EXPLAIN.search(question):
        return QuestionForm.EXPLAIN
    if _YES_NO.search(question):
        return QuestionForm.YES_NO
    if wants_several(question):
        return QuestionForm.LIST
    return QuestionForm.FACT


def salient_terms(question: str) -> list[str]:
    """Terms of the names and numbers a question mentions: an answer about something else is no answer."""
    words = " ".join(proper_names(" " + question)) + " " + " ".join(NUMBER.findall(question))
    return list(dict.fromkeys(t for t in terms(words) if t not in _FRAMING))


@lru_cache(maxsize=1)
def _foreign_words() -> frozenset[str]:
    text = resources.files("assistant.data").joinpath("foreign_function_words.txt").read_text(encoding="utf-8")
    words = {w for line in text.splitlines() if not line.startswith("#") for w in line.split()}
    return frozenset(words - STOPWORDS)


_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def is_english(question: str) -> bool:
    """Whether a question reads as English (the bundled embedder understands nothing else).

    Not English: mostly letters outside the Latin script, or at least two function words of another
    European language or accented lowercase words, and more of them than English function words.
    Short questions and names pass.
    """
    letters = [ch for ch in question if ch.isalpha()]
    if letters and sum(ord(ch) > 0x24F for ch in letters) / len(letters) > 0.3:
        return False
    raw_words = _WORD.findall(question)
    words = [w.lower() for w in raw_words]
    if len(words) < 3:
        return True
    # Accented lowercase words ("envió", "später") count against English too; accented names do not.
    accented = sum(w.islower() and not w.isascii() for w in raw_words)
    foreign = sum(w in _foreign_words() for w in words) + accented
    english = sum(w in STOPWORDS for w in words)
    return not (foreign >= 2 and foreign > english)


_ANAPHORA = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|there|this|that|these|those|he|she|his|her|him|the same|"
    r"which one|that one|the other|the former|the latter)\b",
    re.IGNORECASE,
)
_FOLLOW_UP_OPENING = re.compile(r"^\W*(and|also|what about|how about|then|so|but)\b", re.IGNORECASE)
_SUBQUESTION_SPLIT = re.compile(r"\?\s+(?=\S)|,?\s+and\s+(?=(what|when|where|who|whom|which|how|why)\b)", re.IGNORECASE)


def answer_type(question: str) -> AnswerType:
    """The first answer type whose cue the question contains."""
    for kind, pattern in _TYPE_RULES:
        if pattern.search(question):
            return kind
    return AnswerType.OTHER


@dataclass(slots=True)
class Question:
    """A question ready for retrieval and answering.

    Attributes:
        text: The question as asked.
        search_text: What retrieval searches for (with follow-up context prepended when needed).
        terms: Content terms of the question itself.
        context_terms: Content terms borrowed from the conversation, weighted lower.
        context_text: The conversation text they came from (an answer must add something beyond it).
        kind: The answer type a real answer must contain.
        form: One fact, a yes/no rule, an explanation or a list.
        salient: Terms of the names and numbers the question mentions.
        parts: Sub-questions of a compound question (itself alone when simple).

    """

    text: str
    search_text: str
    terms: list[str]
    context_terms: list[str] = field(default_factory=list)
    context_text: str = ""
    kind: AnswerType = AnswerType.OTHER
    form: QuestionForm = QuestionForm.FACT
    salient: list[str] = field(default_factory=list)
    parts: list[Question] = field(default_factory=list)


def validate_history(history: object, max_turns: int) -> list[dict[str, str]]:
    """Check ``history`` is a list of ``{"role": "user"|"assistant", "content": str}`` and keep the tail.

    Raises:
        InputError: The history is not in that shape.

    """
    if history is None:
        return []
    if not isinstance(history, list):
        raise InputError("history must be a list of {role, content} messages")
    clean = []
    for i, item in enumerate(history):
        if not isinstance(item, dict) or set(item) - {"role", "content"} or "role" not in item or "content" not in item:
            raise InputError(f"history[{i}] must be an object with exactly 'role' and 'content'")
        if item["role"] not in ("user", "assistant"):
            raise InputError(f"history[{i}].role must be 'user' or 'assistant'")
        if not isinstance(item["content"], str):
            raise InputError(f"history[{i}].content must be a string")
        clean.append({"role": item["role"], "content": item["content"][:4000]})
    return clean[-max_turns:] if max_turns else []


def validate_question(question: object, max_chars: int) -> str:
    """Return the question stripped, or raise a clear error.

    Raises:
        InputError: Not a string, empty, or too long.

    """
    if not isinstance(question, str):
        raise InputError("question must be a string")
    text = question.replace("\x00", " ").strip()
    if not text:
        raise InputError("question is empty; type a question about the sources")
    if len(text) > max_chars:
        raise InputError(f"question is too long ({len(text)} characters; the limit is {max_chars})")
    return text


def _is_follow_up(text: str, own_terms: list[str]) -> bool:
    return bool(_ANAPHORA.search(text) or _FOLLOW_UP_OPENING.search(text) or len(own_terms) <= 2)


_CITATION_MARK = re.compile(r"\[\d+\]")
_ELLIPSIS_OPENING = re.compile(r"^\W*(?:and|also|but|so)?\W*(?:what about|how about|and for|and in|and at|and|also|for|"
                               r"in|at)\b\W*", re.IGNORECASE)  # fmt: skip
_ASKING_WORD = re.compile(r"\b(what|when|where|who|whom|which|how|why|can|could|do|does|did|is|are|was|were|should|"
                          r"may|must|will|would|has|have)\b", re.IGNORECASE)  # fmt: skip


def is_elliptical(text: str) -> bool:
    """Whether a follow-up names only a new case and asks nothing itself ("And bread?", "What about contractors?")."""
    opening = _ELLIPSIS_OPENING.match(text)
    if not opening:
        return False
    rest = text[opening.end() :]
    return 0 < len(rest.split()) <= 5 and not _ASKING_WORD.search(rest)


def analyse(text: str, history: list[dict[str, str]]) -> Question:
    """Build a :class:`Question`, pulling context from the last user turn when it is a follow-up."""
    own = [t for t in terms(text) if t not in _FRAMING]
    search_text = text
    context: list[str] = []
    context_text = ""
    asked_like = text  # what decides the kind of answer: an elliptical follow-up asks what the last question did
    if history and _is_follow_up(text, own):
        last_user = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
        last_reply = next((m["content"] for m in reversed(history) if m["role"] == "assistant"), "")
        last_reply = _CITATION_MARK.sub("", last_reply)
        # "it", "there", "they" most often point at what the last answer named and the last question did not.
        introduced = proper_names(" " + last_reply) - proper_names(" " + last_user) if _ANAPHORA.search(text) else set()
        named = " ".join(sorted(introduced, key=last_reply.lower().find))
        search_text = " ".join(p for p in (last_user, named, text) if p)
        if is_elliptical(text) and last_user:
            asked_like = last_user
        context_text = f"{last_user} {last_reply}"
        context = [t for t in dict.fromkeys(terms(f"{last_user} {last_reply}")) if t not in own and t not in _FRAMING]
    question = Question(
        text=text,
        search_text=search_text,
        terms=list(dict.fromkeys(own)),
        context_terms=context,
        context_text=context_text,
        kind=answer_type(asked_like),
        form=question_form(asked_like),
        salient=salient_terms(text),
    )
    pieces = [p.strip(" ,?") for p in _SUBQUESTION_SPLIT.split(text) if p and p.strip(" ,?")]
    pieces = [p for p in pieces if p.lower() not in ("what", "when", "where", "who", "whom", "which", "how", "why")]
    if len(pieces) > 1 and all(len(terms(p)) >= 2 for p in pieces):
        question.parts = [analyse(p + "?", history) for p in pieces]
    else:
        question.parts = [question]
    return question
