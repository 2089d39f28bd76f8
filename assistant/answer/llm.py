"""Chat-model backends chosen by one string: ``openai:<model>``, ``ollama:<model>``, ``llamacpp:<path.gguf>``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.config import LLMSettings
from assistant.errors import ConfigError

EXTRACTIVE = "extractive"


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"this backend needs an extra package: pip install '{extra}'") from None


def make_chat_model(settings: LLMSettings) -> Any | None:
    """Build the LangChain chat model named by ``settings.spec``; ``None`` for the extractive backend.

    Raises:
        ConfigError: Unknown provider, missing model name, or the provider's package is not installed.

    """
    spec = settings.spec.strip()
    if spec == EXTRACTIVE:
        return None
    provider, _, name = spec.partition(":")
    if not name:
        raise ConfigError(
            f"ASSISTANT_LLM={spec!r}: use 'extractive', 'openai:<model>', 'ollama:<model>' or 'llamacpp:<path>'"
        )
    if provider == "openai":
        module = _require("langchain_openai", "langchain-openai")
        return module.ChatOpenAI(
            model=name,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key or "not-needed",
            temperature=settings.temperature,
            timeout=settings.timeout_s,
            max_retries=1,
        )
    if provider == "ollama":
        module = _require("langchain_ollama", "langchain-ollama")
        return module.ChatOllama(model=name, base_url=settings.ollama_base_url, temperature=settings.temperature)
    if provider == "llamacpp":
        if not Path(name).is_file():
            raise ConfigError(f"GGUF model file not found: {name}")
        _require("llama_cpp", "llama-cpp-python")
        module = _require("langchain_community.chat_models", "langchain-community")
        return module.ChatLlamaCpp(model_path=name, temperature=settings.temperature, n_ctx=4096, verbose=False)
    raise ConfigError(f"unknown LLM provider {provider!r} in ASSISTANT_LLM={spec!r}")
