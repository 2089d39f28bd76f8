"""Answers written by a chat model, then verified sentence by sentence before anyone sees them."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from assistant.answer.verify import Verification, Verifier
from assistant.errors import BackendError
from assistant.prompts import load_prompt, refusal_sentinel
from assistant.retrieval import Passage


def format_passages(passages: list[Passage]) -> str:
    """Number and delimit passages as data; the delimiters are stripped from passage text first."""
    blocks = []
    for i, p in enumerate(passages, 1):
        body = p.text.replace("<passage", "‹passage").replace("</passage>", "‹/passage›")
        title = p.title.replace('"', "'")
        blocks.append(f'<passage n="{i}" title="{title}">\n{body}\n</passage>')
    return "\n\n".join(blocks)


def format_history(history: list[dict[str, str]]) -> str:
    """The conversation as ``role: text`` lines."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in history)


@dataclass(slots=True)
class Draft:
    """A verified generated answer, or the reason there is none."""

    passages: list[Passage]
    verification: Verification | None
    refused_by_model: bool


class GenerativeAnswerer:
    """Condense follow-ups, generate from given passages with the answer prompt, verify.

    Retrieval is not done here: the answer pipeline retrieves once and hands the same passages to the
    model and to the answerability model.

    Args:
        chat_model: A LangChain chat model (``ChatOpenAI``, ``ChatOllama``, ``ChatLlamaCpp``, a fake).
        verifier: Checks sentences against passages.

    """

    def __init__(self, chat_model: Runnable, verifier: Verifier) -> None:
        self.verifier = verifier
        self.sentinel = refusal_sentinel()
        answer_prompt = load_prompt("answer").chat_prompt(sentinel=self.sentinel)
        self.answer_chain = answer_prompt | chat_model | StrOutputParser()
        self.condense_chain = load_prompt("condense").chat_prompt() | chat_model | StrOutputParser()

    def condense(self, question: str, history: list[dict[str, str]]) -> str:
        """Rewrite a follow-up as a standalone question (the original question if the model fails)."""
        if not history:
            return question
        try:
            rewritten = self.condense_chain.invoke({"history": format_history(history), "question": question})
        except Exception:  # a failed rewrite must not fail the answer; the original question still works
            return question
        rewritten = rewritten.strip().splitlines()[0].strip() if rewritten.strip() else ""
        return rewritten if 3 <= len(rewritten) <= 500 else question

    def draft(self, question: str, passages: list[Passage]) -> Draft:
        """Generate an answer to a standalone ``question`` from ``passages`` and verify it.

        Raises:
            BackendError: The model could not be reached or failed mid-answer.

        """
        if not passages:
            return Draft(passages, None, True)
        try:
            raw = self.answer_chain.invoke({"context": format_passages(passages), "question": question})
        except Exception as exc:  # provider errors vary by backend; all mean the backend failed
            raise BackendError(f"the language model failed: {exc.__class__.__name__}: {str(exc)[:200]}") from None
        if not raw.strip() or self.sentinel in raw:
            return Draft(passages, None, True)
        return Draft(passages, self.verifier.verify(raw, passages), False)
