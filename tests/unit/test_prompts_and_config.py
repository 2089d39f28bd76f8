"""Prompt files load and declare exactly their placeholders; settings parse from the environment."""

from __future__ import annotations

import pytest

from assistant.config import Settings
from assistant.prompts import PROMPTS_DIR, PromptTemplate, load_prompt, refusal_sentinel, refusal_text


def test_answer_prompt_renders_with_its_placeholders():
    prompt = load_prompt("answer").chat_prompt(sentinel=refusal_sentinel())
    messages = prompt.format_messages(context="[1] Passage text", question="Why?")
    assert refusal_sentinel() in messages[0].content
    assert "[1] Passage text" in messages[1].content and "Why?" in messages[1].content


def test_condense_prompt_renders():
    messages = load_prompt("condense").chat_prompt().format_messages(history="user: hi", question="And it?")
    assert "And it?" in messages[-1].content


def test_refusal_prompt_has_text_and_sentinel():
    assert refusal_text() and refusal_sentinel() == "NOT_IN_SOURCES"


def test_every_prompt_file_is_valid():
    names = sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml"))
    assert names == ["answer", "condense", "not_english", "refusal"]
    for name in names:
        load_prompt(name)


def test_undeclared_placeholder_is_rejected():
    with pytest.raises(ValueError, match="declares"):
        PromptTemplate(name="x", description="x", placeholders=["a"], template="{a} {b}")


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_SOURCES_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "i"))
    monkeypatch.setenv("ASSISTANT_LLM", "openai:gpt-4o-mini")
    monkeypatch.setenv("ASSISTANT_RETRIEVAL__TOP_K", "9")
    settings = Settings(_env_file=None)
    assert settings.paths.sources_dir == tmp_path / "s"
    assert settings.paths.index_dir == tmp_path / "i"
    assert settings.llm.spec == "openai:gpt-4o-mini"
    assert settings.retrieval.top_k == 9


def test_index_name_changes_with_what_makes_it_valid():
    a = Settings(_env_file=None)
    b = Settings(_env_file=None, chunking={"chunk_size": 500})
    c = Settings(_env_file=None, embedding={"model": "/models/other"})
    d = Settings(_env_file=None, embedding={"backend": "torch"})
    e = Settings(_env_file=None, embedding={"quantize": "none"})
    f = Settings(_env_file=None, chunking={"parse_workers": 0})
    assert len({x.collection_name for x in (a, b, c, d, e)}) == 5
    assert f.collection_name == a.collection_name, "how files are parsed does not change the index"


def test_unknown_setting_is_rejected():
    with pytest.raises(ValueError):
        Settings(_env_file=None, retrieval={"top_kk": 3})
