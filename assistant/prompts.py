"""Prompt templates loaded from ``prompts/*.yaml`` and checked for their placeholders."""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

import yaml
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.errors import ConfigError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class PromptTemplate(BaseModel):
    """One prompt file: an optional system message and a user template with declared placeholders."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="File stem.")
    description: str = Field(description="What the prompt is for.")
    placeholders: list[str] = Field(description="Every {placeholder} the texts use, no more.")
    template: str = Field(description="The user message (or the whole text).")
    system: str | None = Field(None, description="The system message.")
    sentinel: str | None = Field(None, description="A marker the model replies with to refuse.")

    @model_validator(mode="after")
    def _check_placeholders(self) -> PromptTemplate:
        used = _fields(self.template) | _fields(self.system or "")
        if used != set(self.placeholders):
            raise ValueError(f"prompt {self.name!r} uses {sorted(used)} but declares {sorted(self.placeholders)}")
        return self

    def chat_prompt(self, **partials: str) -> ChatPromptTemplate:
        """A LangChain chat prompt, with some placeholders filled in already."""
        messages = [("system", self.system)] if self.system else []
        messages.append(("human", self.template))
        prompt = ChatPromptTemplate.from_messages(messages)
        return prompt.partial(**partials) if partials else prompt


@lru_cache(maxsize=32)
def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> PromptTemplate:
    """Load and validate ``<directory>/<name>.yaml``.

    Raises:
        ConfigError: The file is missing or malformed.

    """
    path = directory / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return PromptTemplate.model_validate(data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"prompt {path} is missing or invalid: {exc}") from None


def refusal_text() -> str:
    """What a refusal says to the user."""
    return load_prompt("refusal").template.strip()


def refusal_sentinel() -> str:
    """The marker a generative backend replies with when the passages do not answer."""
    sentinel = load_prompt("refusal").sentinel
    if not sentinel:
        raise ConfigError("prompts/refusal.yaml must define a sentinel")
    return sentinel


def not_english_text() -> str:
    """What the user sees when a question is not in English."""
    return load_prompt("not_english").template.strip()
